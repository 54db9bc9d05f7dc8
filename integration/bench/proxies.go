package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// The reference proxies forward to MinIO without touching what SigV4 signs.
// The client signs for the proxy's address (Host 127.0.0.1:PROXYPORT); the
// proxies pass that Host header on unchanged, and MinIO, which checks the
// signature against the Host it receives, accepts it: path-style requests
// name no host-bound bucket, so MinIO serves any Host. Nothing else the
// client signs (x-amz-*, the path and query) is rewritten: nginx's
// proxy_pass has no URI part and merge_slashes is off; Caddy passes the URI
// through. Headers the proxies add (Caddy's X-Forwarded-*) are not signed.

// nginxParams configures nginxConfig.
type nginxParams struct {
	Prefix      string // nginx's -p directory: pid file and temporary paths
	Listen      string // 127.0.0.1:PORT
	CertFile    string // TLS certificate chain (PEM)
	KeyFile     string
	Upstream    string // MinIO's 127.0.0.1:PORT
	UpstreamCA  string // PEM file of the CA that signed MinIO's certificate
	UpstreamSNI string // a name in MinIO's certificate
}

// nginxConfig returns an nginx.conf for a streaming TLS reverse proxy: no
// request or response buffering (64 KiB relayed per read), no body size limit, HTTP/1.1 with
// keep-alive to a verified TLS upstream, and keep-alive limits high enough
// that a benchmark never reconnects.
func nginxConfig(p nginxParams) string {
	tmp := func(name string) string { return quoteNginx(filepath.Join(p.Prefix, "tmp", name)) }
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("daemon off;")
	w("master_process on;")
	w("worker_processes auto;")
	w("pid %s;", quoteNginx(filepath.Join(p.Prefix, "nginx.pid")))
	w("error_log stderr warn;")
	w("events { worker_connections 1024; }")
	w("http {")
	w("  access_log off;")
	w("  client_body_temp_path %s;", tmp("body"))
	w("  proxy_temp_path %s;", tmp("proxy"))
	w("  fastcgi_temp_path %s;", tmp("fastcgi"))
	w("  uwsgi_temp_path %s;", tmp("uwsgi"))
	w("  scgi_temp_path %s;", tmp("scgi"))
	w("  keepalive_requests 1000000;")
	w("  keepalive_timeout 300s;")
	w("  merge_slashes off;")
	w("  upstream s3 {")
	w("    server %s;", p.Upstream)
	w("    keepalive 64;")
	w("    keepalive_requests 1000000;")
	w("    keepalive_timeout 300s;")
	w("  }")
	w("  server {")
	w("    listen %s ssl;", p.Listen)
	w("    ssl_certificate %s;", quoteNginx(p.CertFile))
	w("    ssl_certificate_key %s;", quoteNginx(p.KeyFile))
	w("    ssl_protocols TLSv1.2 TLSv1.3;")
	w("    client_max_body_size 0;")
	w("    proxy_request_buffering off;")
	w("    proxy_buffering off;")
	// Unbuffered, nginx relays at most proxy_buffer_size per read (8k by
	// default), which costs it about half its large-GET throughput; 64k
	// matches the copy buffers of the Go proxies.
	w("    proxy_buffer_size 64k;")
	w("    proxy_buffers 4 64k;")
	w("    proxy_busy_buffers_size 128k;")
	w("    proxy_http_version 1.1;")
	w(`    proxy_set_header Connection "";`)
	w("    proxy_set_header Host $http_host;")
	w("    proxy_ssl_trusted_certificate %s;", quoteNginx(p.UpstreamCA))
	w("    proxy_ssl_verify on;")
	w("    proxy_ssl_name %s;", p.UpstreamSNI)
	w("    proxy_ssl_server_name on;")
	w("    proxy_ssl_session_reuse on;")
	w("    proxy_connect_timeout 10s;")
	w("    proxy_read_timeout 300s;")
	w("    proxy_send_timeout 300s;")
	w("    location / { proxy_pass https://s3; }")
	w("  }")
	w("}")
	return b.String()
}

// quoteNginx quotes a path for nginx.conf.
func quoteNginx(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// caddyParams configures caddyConfig.
type caddyParams struct {
	Storage     string // Caddy's storage directory
	Listen      string // 127.0.0.1:PORT
	CertFile    string
	KeyFile     string
	Upstream    string // MinIO's 127.0.0.1:PORT
	UpstreamCA  string // PEM file of the CA that signed MinIO's certificate
	UpstreamSNI string // a name in MinIO's certificate
}

// caddyConfig returns a Caddy JSON configuration for a streaming TLS
// reverse proxy: the certificate from files, no admin endpoint, no
// automatic HTTPS, reverse_proxy to MinIO over verified TLS and HTTP/1.1
// with flush_interval -1 and the client's Host header kept.
func caddyConfig(p caddyParams) ([]byte, error) {
	type obj = map[string]any
	cfg := obj{
		"admin":   obj{"disabled": true, "config": obj{"persist": false}},
		"logging": obj{"logs": obj{"default": obj{"level": "ERROR"}}},
		"storage": obj{"module": "file_system", "root": p.Storage},
		"apps": obj{
			"tls": obj{
				"certificates": obj{"load_files": []obj{{
					"certificate": p.CertFile, "key": p.KeyFile, "tags": []string{"bench"},
				}}},
			},
			"http": obj{"servers": obj{"bench": obj{
				"listen":          []string{p.Listen},
				"protocols":       []string{"h1"},
				"automatic_https": obj{"disable": true},
				"tls_connection_policies": []obj{{
					"certificate_selection": obj{"any_tag": []string{"bench"}},
					"default_sni":           p.UpstreamSNI,
				}},
				"routes": []obj{{"handle": []obj{{
					"handler":        "reverse_proxy",
					"upstreams":      []obj{{"dial": p.Upstream}},
					"flush_interval": -1,
					"headers": obj{"request": obj{"set": obj{
						"Host": []string{"{http.request.hostport}"},
					}}},
					"transport": obj{
						"protocol": "http",
						"versions": []string{"1.1"},
						"tls": obj{
							"ca":          obj{"provider": "file", "pem_files": []string{p.UpstreamCA}},
							"server_name": p.UpstreamSNI,
						},
						"keep_alive": obj{"max_idle_conns_per_host": 64},
					},
				}}}},
			}}},
		},
	}
	return json.MarshalIndent(cfg, "", "  ")
}

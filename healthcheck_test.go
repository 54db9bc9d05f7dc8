package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// adminStub serves /healthz with 200 and /readyz with readyStatus.
func adminStub(t *testing.T, readyStatus int) (*httptest.Server, *[]string) {
	t.Helper()
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte("ok\n"))
		case "/readyz":
			w.WriteHeader(readyStatus)
			w.Write([]byte("{\"ready\":false,\n\"tls\":\"no certificate yet\"}\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &paths
}

func TestHealthcheck(t *testing.T) {
	srv, paths := adminStub(t, http.StatusServiceUnavailable)
	host := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := net.SplitHostPort(host)
	cases := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		path   string
		output string
	}{
		{"env healthz", nil, map[string]string{"S3SEAL_ADMIN_LISTEN": host}, 0, "/healthz", "200 OK"},
		{"wildcard listen", nil, map[string]string{"S3SEAL_ADMIN_LISTEN": "0.0.0.0:" + port}, 0, "/healthz", "200 OK"},
		{"empty host", nil, map[string]string{"S3SEAL_ADMIN_LISTEN": ":" + port}, 0, "/healthz", "200 OK"},
		{"ready not ready", []string{"--ready"}, map[string]string{"S3SEAL_ADMIN_LISTEN": host}, 1, "/readyz", `503 Service Unavailable: {"ready":false, "tls":"no certificate yet"}`},
		{"url", []string{"--url", srv.URL + "/healthz"}, nil, 0, "/healthz", "200 OK"},
		{"url 404", []string{"--url", srv.URL + "/nope"}, nil, 1, "/nope", "404 Not Found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			*paths = nil
			var out, errb bytes.Buffer
			code := runHealthcheck(c.args, &out, &errb, envMap(c.env))
			if code != c.code {
				t.Fatalf("exit %d, want %d (stdout %q, stderr %q)", code, c.code, out.String(), errb.String())
			}
			if len(*paths) != 1 || (*paths)[0] != c.path {
				t.Fatalf("requests %v, want one of %s", *paths, c.path)
			}
			msg := out.String() + errb.String()
			if !strings.Contains(msg, c.output) || strings.Count(msg, "\n") != 1 {
				t.Fatalf("output %q, want one line containing %q", msg, c.output)
			}
		})
	}
}

func TestHealthcheckConfigFile(t *testing.T) {
	srv, paths := adminStub(t, http.StatusOK)
	host := strings.TrimPrefix(srv.URL, "http://")
	file := filepath.Join(t.TempDir(), "s3seal.yaml")
	if err := os.WriteFile(file, []byte("admin_listen: "+host+"\nlisten: 127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := runHealthcheck([]string{"--ready"}, &out, &errb, envMap(map[string]string{"S3SEAL_CONFIG": file})); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if len(*paths) != 1 || (*paths)[0] != "/readyz" {
		t.Fatalf("requests %v", *paths)
	}
	// The environment wins over the file, as for "s3seal serve".
	*paths = nil
	dead := deadAddr(t)
	code := runHealthcheck([]string{"--config", file}, &out, &errb, envMap(map[string]string{"S3SEAL_ADMIN_LISTEN": dead}))
	if code != 1 || len(*paths) != 0 {
		t.Fatalf("exit %d, requests %v: S3SEAL_ADMIN_LISTEN did not override the file", code, *paths)
	}
	// A file with a typo is reported, not ignored.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("admin_lisen: "+host+"\n"), 0o600)
	errb.Reset()
	if code := runHealthcheck([]string{"--config", bad}, &out, &errb, envMap(nil)); code != 1 || !strings.Contains(errb.String(), "admin_lisen") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestHealthcheckFailures(t *testing.T) {
	// A server that accepts but never answers.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer hang.Close()
	redirect := httptest.NewServer(http.RedirectHandler("http://127.0.0.1:1/healthz", http.StatusFound))
	defer redirect.Close()
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"refused", nil, map[string]string{"S3SEAL_ADMIN_LISTEN": deadAddr(t)}, "refused"},
		{"timeout", []string{"--url", hang.URL + "/healthz", "--timeout", "200ms"}, nil, "no answer within 200ms"},
		{"redirect is not healthy", []string{"--url", redirect.URL + "/healthz"}, nil, "302 Found"},
		{"bad url", []string{"--url", "ftp://127.0.0.1/healthz"}, nil, "want http://"},
		{"extra argument", []string{"serve"}, nil, "unexpected argument"},
		{"bad flag", []string{"--nope"}, nil, "not defined"},
		{"missing config", []string{"--config", "/nonexistent/s3seal.yaml"}, nil, "admin_listen"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			start := time.Now()
			code := runHealthcheck(c.args, &out, &errb, envMap(c.env))
			if code != 1 {
				t.Fatalf("exit %d, want 1 (stderr %q)", code, errb.String())
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
			if !strings.Contains(errb.String(), c.want) || out.Len() != 0 {
				t.Fatalf("stdout %q, stderr %q, want %q", out.String(), errb.String(), c.want)
			}
		})
	}
}

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:9180":   "127.0.0.1:9180",
		":9180":          "127.0.0.1:9180",
		"[::]:9180":      "[::1]:9180",
		"10.1.2.3:9180":  "10.1.2.3:9180",
		"localhost:9180": "localhost:9180",
		"garbage":        "garbage",
	} {
		if got := dialable(in); got != want {
			t.Errorf("dialable(%q) = %q, want %q", in, got, want)
		}
	}
}

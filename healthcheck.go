package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/s3seal/s3seal/config"
)

// defaultAdminListen is the admin listener's address when nothing sets one;
// it matches config's default.
const defaultAdminListen = "127.0.0.1:9180"

// healthcheck runs "s3seal healthcheck": one GET of the admin listener's
// /healthz (or /readyz with --ready), exit status 0 when it answers 200 and
// 1 otherwise, with a one-line reason. It is the container image's
// HEALTHCHECK, where no curl or wget exists.
func healthcheck(args []string, stdout, stderr io.Writer) int {
	return runHealthcheck(args, stdout, stderr, os.LookupEnv)
}

func runHealthcheck(args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rawURL := fs.String("url", "", "URL to check (default http://ADMIN/healthz, ADMIN from $S3SEAL_ADMIN_LISTEN, else admin_listen in the configuration file, else "+defaultAdminListen+")")
	ready := fs.Bool("ready", false, "check /readyz (config loaded, a certificate to serve) instead of /healthz (alive)")
	file := fs.String("config", "", "configuration file to read admin_listen from (default $S3SEAL_CONFIG)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "s3seal healthcheck: unexpected argument %q\n", fs.Arg(0))
		return 1
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "s3seal healthcheck: --timeout must be positive")
		return 1
	}
	target := *rawURL
	if target == "" {
		admin, err := adminListen(*file, env)
		if err != nil {
			fmt.Fprintf(stderr, "s3seal healthcheck: %v\n", err)
			return 1
		}
		path := "/healthz"
		if *ready {
			path = "/readyz"
		}
		target = "http://" + dialable(admin) + path
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "s3seal healthcheck: --url %q: want http://HOST:PORT/PATH\n", target)
		return 1
	}
	status, body, err := probe(u.String(), *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "s3seal healthcheck: %s: %v\n", u.Redacted(), err)
		return 1
	}
	if status != http.StatusOK {
		fmt.Fprintf(stderr, "s3seal healthcheck: %s: %d %s%s\n", u.Redacted(), status, http.StatusText(status), oneLine(body))
		return 1
	}
	fmt.Fprintf(stdout, "s3seal healthcheck: %s: 200 OK\n", u.Redacted())
	return 0
}

// adminListen finds the admin listener's address the way "s3seal serve"
// does: $S3SEAL_ADMIN_LISTEN over the file's admin_listen over the default.
func adminListen(file string, env func(string) (string, bool)) (string, error) {
	if v, ok := env("S3SEAL_ADMIN_LISTEN"); ok && v != "" {
		return v, nil
	}
	if file == "" {
		file, _ = env("S3SEAL_CONFIG")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading %s for admin_listen: %w", file, err)
		}
		var c config.Config
		if err := config.Parse(b, &c); err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		if c.AdminListen != "" {
			return c.AdminListen, nil
		}
	}
	return defaultAdminListen, nil
}

// dialable turns a listen address into one to connect to: a wildcard or
// empty host becomes the loopback address of the same family.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// probe GETs target once without any proxy, returning the status and the
// start of the body.
func probe(target string, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("User-Agent", "s3seal-healthcheck")
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, "", fmt.Errorf("no answer within %v", timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, string(body), nil
}

// oneLine renders a response body as a short suffix on one line.
func oneLine(body string) string {
	s := strings.Join(strings.Fields(body), " ")
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return ": " + s
}

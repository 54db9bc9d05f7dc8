package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/config"
)

// TestHelpExitsZero: asking a command for help is not an error.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--help"}, {"serve", "-h"}, {"demo", "--help"}, {"inspect", "-h"}, {"decrypt", "-h"},
		{"keygen", "-h"}, {"rewrap", "-h"}, {"healthcheck", "-h"}, {"help"}, {"--help"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, nil, &out, &errb); code != 0 {
			t.Errorf("%v exited %d:\n%s", args, code, errb.String())
		}
		if out.Len()+errb.Len() == 0 {
			t.Errorf("%v printed nothing", args)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--no-such-flag"}, nil, &out, &errb); code != 2 {
		t.Errorf("unknown flag exited %d", code)
	}
}

// TestServeHelpListsEverything: "serve --help" shows every flag and every
// environment variable, each with the file key it sets.
func TestServeHelpListsEverything(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--help"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	help := out.String() + errb.String()
	// Every flag serve defines.
	fs, _ := newServeFlags(io.Discard)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if !strings.Contains(help, "-"+f.Name+" ") || !strings.Contains(help, strings.Split(f.Usage, "`")[0]) {
			t.Errorf("help does not list -%s", f.Name)
		}
	})
	if n < 5 {
		t.Fatalf("serve defines %d flags", n)
	}
	for _, e := range config.EnvVars() {
		if !strings.Contains(help, e[0]) || !strings.Contains(help, e[1]) {
			t.Errorf("help does not list %s (%s)", e[0], e[1])
		}
	}
	for _, want := range []string{"S3SEAL_CONFIG", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "configuration reference"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// serveEnv sets the environment of a minimal serve: plain HTTP on
// loopback, one client, the given upstream.
func serveEnv(t *testing.T, listen, admin, upstream string) {
	for k, v := range map[string]string{
		"S3SEAL_LISTEN": listen, "S3SEAL_ADMIN_LISTEN": admin, "S3SEAL_TLS": "off",
		"S3SEAL_CLIENT_ACCESS_KEY_ID": "app", "S3SEAL_CLIENT_SECRET_ACCESS_KEY": "app-secret-123",
		"AWS_ENDPOINT_URL_S3": upstream, "AWS_ACCESS_KEY_ID": "upkey", "AWS_SECRET_ACCESS_KEY": "upsecret",
		"S3SEAL_CONFIG": "", "S3SEAL_DATA_DIR": t.TempDir(), "S3SEAL_LOG_LEVEL": "info",
	} {
		t.Setenv(k, v)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	a, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestServeStartFailuresArePlain: a listener that cannot be bound is
// reported like a configuration error, as one plain line naming the
// setting, variable and flag, not as a JSON log record.
func TestServeStartFailuresArePlain(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct {
		name, listen, admin, want string
	}{
		{"S3 listener", busy.Addr().String(), freeAddr(t), "s3seal: cannot start: listen (S3SEAL_LISTEN, --listen): " + busy.Addr().String() + " is already in use by another process: stop it, or choose another address with --listen or S3SEAL_LISTEN"},
		{"admin listener", freeAddr(t), busy.Addr().String(), "s3seal: cannot start: admin_listen (S3SEAL_ADMIN_LISTEN, --admin-listen): " + busy.Addr().String() + " is already in use"},
	} {
		t.Run(c.name, func(t *testing.T) {
			serveEnv(t, c.listen, c.admin, "http://"+freeAddr(t))
			var out, errb bytes.Buffer
			code := serve(context.Background(), nil, &out, &errb)
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			last := lines[len(lines)-1]
			if code != 1 || !strings.HasPrefix(last, c.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant a last line starting %q", code, errb.String(), c.want)
			}
			if strings.Contains(errb.String(), "cannot start\"") {
				t.Errorf("the failure is (also) a log record:\n%s", errb.String())
			}
		})
	}
}

// TestServeWarnsUnreachableUpstream: s3seal starts although the upstream
// does not answer, and says so once in the log.
func TestServeWarnsUnreachableUpstream(t *testing.T) {
	dead := freeAddr(t) // nothing listens here
	serveEnv(t, freeAddr(t), freeAddr(t), "http://"+dead)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- serve(ctx, nil, &out, &errb) }()
	waitFor(t, &out, "s3seal listening on", 10*time.Second)
	log := waitFor(t, &errb, "upstream unreachable", 10*time.Second)
	if !strings.Contains(log, dead) || !strings.Contains(log, `"level":"warn"`) {
		t.Errorf("warning does not name the upstream:\n%s", log)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d", code)
	}
}

// TestVersionFrom: the version comes from -ldflags, else Go's module
// version, else the commit Go recorded, else "dev".
func TestVersionFrom(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	devel := debug.Module{Path: "github.com/s3seal/s3seal", Version: "(devel)"}
	for _, c := range []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     string
	}{
		{"ldflags win", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-x"}}, "v1.2.3", "v1.2.3"},
		{"module version", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261203063928-b34266b16834+dirty"}}, "", "v0.0.0-20261203063928-b34266b16834+dirty"},
		{"commit", &debug.BuildInfo{Main: devel, Settings: vcs("vcs.revision", "b34266b16834d91ff45045f880144008df1c80cc", "vcs.time", "2026-12-03T06:39:28Z", "vcs.modified", "false")}, "", "dev-20261203063928-b34266b16834"},
		{"modified commit", &debug.BuildInfo{Main: devel, Settings: vcs("vcs.revision", "b34266b16834d91ff45045f880144008df1c80cc", "vcs.modified", "true")}, "", "dev-b34266b16834+dirty"},
		{"nothing recorded", &debug.BuildInfo{Main: devel}, "", "dev"},
		{"no build info", nil, "", "dev"},
	} {
		if got := versionFrom(c.bi, c.override); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"

	"github.com/s3seal/s3seal/config"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/deploy/demostore"
	"github.com/s3seal/s3seal/deploy/tlsconf"
)

const dashboardFile = "deploy/grafana/s3seal.json"

// scrapedMetrics runs s3seal (envelope mode, a key ring, a self-signed
// certificate) in front of the embedded store, sends it requests that
// exercise every metric family (PUTs and GETs, a refused signature, a
// request while the store is down), and returns the metric names of its
// /metrics with the label names each carries.
func scrapedMetrics(t *testing.T) map[string]map[string]bool {
	t.Helper()
	dir := t.TempDir()
	store, err := demostore.Start(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.CreateBucket("dash"); err != nil {
		t.Fatal(err)
	}
	ring := filepath.Join(dir, "keyring")
	if _, err := local.Create(ring, rand.Reader, time.Now()); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		Listen: freeAddr(t), AdminListen: freeAddr(t), DataDir: filepath.Join(dir, "data"),
		Mode: "envelope", Keys: "local:" + ring,
		Clients:  []config.Client{{Name: "app", AccessKeyID: "app", SecretAccessKey: "app-secret-123"}},
		Upstream: config.Upstream{Endpoint: store.Endpoint, Region: "us-east-1", AccessKeyID: "store", SecretAccessKey: "store-secret", Checksum: "none"},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := newApp(ctx, cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close(5 * time.Second)
	caFile, _ := tlsconf.SelfSignedPaths(cfg.DataDir)
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	client := func(secret string) *s3.Client {
		return s3.New(s3.Options{
			Region: "us-east-1", BaseEndpoint: aws.String("https://" + a.server.Addr().String()), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider("app", secret, ""),
			HTTPClient:  awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.Proxy = nil; tr.TLSClientConfig = tlsTrusting(pem) }),
			Retryer:     aws.NopRetryer{},
		})
	}
	app := client("app-secret-123")
	for _, k := range []string{"a", "b", "c"} {
		if _, err := app.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("dash"), Key: aws.String(k), Body: strings.NewReader("hello " + k)}); err != nil {
			t.Fatalf("PUT: %v", err)
		}
		out, err := app.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dash"), Key: aws.String(k)})
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		io.Copy(io.Discard, out.Body)
		out.Body.Close()
	}
	if _, err := client("wrong-secret-1").ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("dash")}); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	store.Close()
	_, err = app.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dash"), Key: aws.String("a")})
	if err == nil {
		t.Fatal("a request with the store down succeeded")
	}
	t.Logf("with the store down: %v", err)

	resp, err := http.Get("http://" + a.server.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return parseExposition(t, resp.Body)
}

var labelName = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)

// parseExposition reads the Prometheus text format: metric name to the
// label names of its samples.
func parseExposition(t *testing.T, r io.Reader) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		if strings.HasPrefix(rest, "{") {
			for _, m := range labelName.FindAllStringSubmatch(rest[:strings.LastIndexByte(rest, '}')+1], -1) {
				out[name][m[1]] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	metricRef = regexp.MustCompile(`\b((?:s3seal|go|process)_[a-zA-Z0-9_]+)\b`)
	byClause  = regexp.MustCompile(`\bby\s*\(([^)]*)\)`)
)

// TestDashboardQueriesExportedMetrics: every query of the Grafana dashboard
// names metrics that a running s3seal exports (scraped, not listed by
// hand), groups by labels those metrics carry, and together the queries
// cover what the dashboard is for.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	scraped := scrapedMetrics(t)
	// Prometheus adds these to every series it scrapes.
	scrapeLabels := map[string]bool{"job": true, "instance": true}

	var exprs []string
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			exprs = append(exprs, v.Definition)
		}
	}
	used := map[string]bool{}
	for _, e := range exprs {
		refs := metricRef.FindAllString(e, -1)
		if len(refs) == 0 {
			t.Errorf("query names no s3seal metric: %s", e)
		}
		labels := map[string]bool{}
		for _, m := range refs {
			used[m] = true
			l, ok := scraped[m]
			if !ok {
				t.Errorf("%s is not exported by s3seal (query %s)", m, e)
				continue
			}
			for k := range l {
				labels[k] = true
			}
		}
		for _, by := range byClause.FindAllStringSubmatch(e, -1) {
			for _, l := range strings.Split(by[1], ",") {
				if l = strings.TrimSpace(l); l != "" && !labels[l] && !scrapeLabels[l] {
					t.Errorf("query groups by %q, which none of %v carries: %s", l, refs, e)
				}
			}
		}
	}
	for _, want := range []string{
		"s3seal_requests_total", "s3seal_request_duration_seconds_bucket", "s3seal_upstream_errors_total",
		"s3seal_auth_failures_total", "s3seal_key_provider_calls_total", "s3seal_datakey_cache_hits_total",
		"s3seal_datakey_cache_misses_total", "s3seal_tls_certificate_expiry_timestamp_seconds",
	} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
	// The groupings the dashboard promises: by operation and mode.
	for _, m := range []string{"s3seal_requests_total", "s3seal_request_duration_seconds_bucket"} {
		if !scraped[m]["op"] || !scraped[m]["mode"] {
			t.Errorf("%s carries labels %v, want op and mode", m, labelNames(scraped[m]))
		}
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d queries over %d metrics, all exported: %s", len(exprs), len(names), strings.Join(names, ", "))
}

func labelNames(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

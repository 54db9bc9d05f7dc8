package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestVersitygwConformance runs versitygw's S3 conformance suite
// (`versitygw test full-flow`, several hundred tests) directly against
// versitygw and through s3seal in passthrough and envelope modes, each
// against its own versitygw, and compares the results test by test.
//
// Passthrough must not fail a test that passes directly, except the
// accepted differences in testdata/versitygw-accepted.txt, each with the
// reason it is inherent to a proxy. Envelope mode must not fail a test
// that passes directly unless that file or testdata/versitygw-envelope.txt
// (what envelope mode refuses or does otherwise, each as the README's
// "Envelope mode and S3's conformance suite" explains) names it.
func TestVersitygwConformance(t *testing.T) {
	testbed.Require(t)
	accepted := loadAccepted(t, "testdata/versitygw-accepted.txt")
	refusals := loadAccepted(t, "testdata/versitygw-envelope.txt")

	type run struct {
		name    string
		results *conformanceResults
		err     error
	}
	runs := []*run{{name: "direct"}, {name: "passthrough"}, {name: "envelope"}}
	// The suite administers its buckets (object lock and governance
	// bypass, policies, ACLs), so its s3seal client is an administrator.
	var wg sync.WaitGroup
	for _, r := range runs {
		up := testbed.StartVersitygw(t)
		endpoint, ak, sk := up.Endpoint, up.AccessKey, up.SecretKey
		switch r.name {
		case "passthrough":
			p := startProxy(t, up, proxyOptions{TLS: "off", Env: map[string]string{"S3SEAL_MODE": "passthrough", "S3SEAL_CLIENT_ADMIN": "true"}})
			endpoint, ak, sk = p.Endpoint, p.AccessKey, p.SecretKey
		case "envelope":
			p := startProxy(t, up, proxyOptions{TLS: "off", Env: map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "local:" + newKeyring(t), "S3SEAL_CLIENT_ADMIN": "true"}})
			endpoint, ak, sk = p.Endpoint, p.AccessKey, p.SecretKey
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			r.results, r.err = runFullFlow(t, endpoint, ak, sk)
			if r.err == nil {
				t.Logf("%s: %d tests, %d passed, %d failed in %v", r.name, len(r.results.order), r.results.passed(), len(r.results.order)-r.results.passed(), time.Since(start).Round(time.Second))
			}
		}()
	}
	wg.Wait()
	for _, r := range runs {
		if r.err != nil {
			t.Fatalf("%s run: %v", r.name, r.err)
		}
	}
	direct, pass, env := runs[0].results, runs[1].results, runs[2].results
	if len(direct.order) < 300 || direct.passed() < 300 {
		t.Fatalf("the direct run has only %d tests, %d passed: the suite did not run", len(direct.order), direct.passed())
	}

	var real, inherent, improved []string
	for _, name := range direct.order {
		if !direct.pass[name] || pass.pass[name] {
			continue
		}
		if why, ok := accepted.match(name); ok {
			inherent = append(inherent, name+" — "+why)
			continue
		}
		real = append(real, name+": "+pass.failure(name))
	}
	for _, name := range pass.order {
		if pass.pass[name] && !direct.pass[name] {
			improved = append(improved, name)
		}
	}
	t.Logf("passthrough: %d accepted differences (inherent to a proxy), %d regressions, %d tests pass only through s3seal", len(inherent), len(real), len(improved))
	for _, s := range inherent {
		t.Logf("accepted: %s", s)
	}
	for _, s := range improved {
		t.Logf("passes only through s3seal: %s", s)
	}
	for _, s := range real {
		t.Errorf("regression in passthrough: %s", s)
	}
	for _, name := range accepted.unused(direct, pass) {
		t.Logf("accepted-differences entry matches no current difference: %s", name)
	}

	var documented, undocumented, alsoDirect int
	for _, name := range env.order {
		if env.pass[name] {
			continue
		}
		if !direct.pass[name] {
			alsoDirect++
			continue
		}
		if why, ok := accepted.match(name); ok {
			documented++
			t.Logf("envelope, as through any proxy: %s — %s", name, why)
			continue
		}
		if why, ok := refusals.match(name); ok {
			documented++
			t.Logf("envelope, documented: %s — %s", name, why)
			continue
		}
		undocumented++
		t.Errorf("envelope regression (passes directly, not in testdata/versitygw-envelope.txt): %s: %s", name, env.failure(name))
	}
	t.Logf("envelope: %d tests, %d passed, %d documented refusals or differences, %d undocumented failures, %d fail directly too",
		len(env.order), env.passed(), documented, undocumented, alsoDirect)
	for _, name := range refusals.unused(direct, env) {
		t.Logf("envelope list entry matches no current difference: %s", name)
	}
}

// conformanceResults are one run's results, by test name. A name that
// runs twice gets "#2" appended.
type conformanceResults struct {
	order []string
	pass  map[string]bool
	fail  map[string]string // first line of the failure message
}

func (r *conformanceResults) passed() int {
	n := 0
	for _, ok := range r.pass {
		if ok {
			n++
		}
	}
	return n
}

func (r *conformanceResults) failure(name string) string {
	if m := r.fail[name]; m != "" {
		return m
	}
	return "no result"
}

var (
	ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	// The suite prints "RUN  <name>", then "PASS <name>", or the name and
	// a failure message (without a line break before the next RUN).
	conformanceEvent = regexp.MustCompile(`(RUN|PASS|SKIP) +([A-Za-z0-9_:.-]+)`)
)

// parseFullFlow reads the suite's output.
func parseFullFlow(out string) *conformanceResults {
	out = ansiEscape.ReplaceAllString(out, "")
	res := &conformanceResults{pass: map[string]bool{}, fail: map[string]string{}}
	seen := map[string]int{}
	current := ""
	for _, m := range conformanceEvent.FindAllStringSubmatchIndex(out, -1) {
		kind, name := out[m[2]:m[3]], out[m[4]:m[5]]
		switch kind {
		case "RUN":
			seen[name]++
			current = name
			if seen[name] > 1 {
				current = fmt.Sprintf("%s#%d", name, seen[name])
			}
			res.order = append(res.order, current)
			// The failure message, if any, follows up to the next event.
			rest := out[m[1]:]
			if next := conformanceEvent.FindStringIndex(rest); next != nil {
				rest = rest[:next[0]]
			}
			if i := strings.Index(rest, name+":"); i >= 0 {
				msg := strings.TrimSpace(rest[i+len(name)+1:])
				if j := strings.IndexByte(msg, '\n'); j >= 0 {
					msg = msg[:j]
				}
				if len(msg) > 300 {
					msg = msg[:300] + "…"
				}
				res.fail[current] = msg
			}
		case "PASS":
			if base, _, _ := strings.Cut(current, "#"); base == name {
				res.pass[current] = true
			}
		}
	}
	return res
}

// runFullFlow runs `versitygw test full-flow` against an endpoint. Some of
// its tests run the versitygw binary from the working directory.
func runFullFlow(t *testing.T, endpoint, ak, sk string) (*conformanceResults, error) {
	dir := t.TempDir()
	bin := filepath.Join(testbed.BinDir(), "versitygw")
	if err := os.Symlink(bin, filepath.Join(dir, "versitygw")); err != nil {
		return nil, err
	}
	c, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(c, "./versitygw", "test", "-a", ak, "-s", sk, "-e", endpoint, "full-flow")
	cmd.Dir = dir
	// The suite's SDK refuses a custom AWS_CA_BUNDLE; every endpoint here
	// is plain HTTP on loopback.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	out, _ := cmd.CombinedOutput() // it exits non-zero when any test fails
	if c.Err() != nil {
		return nil, fmt.Errorf("full-flow did not finish in 9 minutes")
	}
	if err := os.WriteFile(filepath.Join(os.TempDir(), "s3seal-fullflow-"+strings.NewReplacer(":", "_", "/", "_").Replace(endpoint)+".txt"), out, 0o600); err != nil {
		t.Logf("keeping the output: %v", err)
	}
	return parseFullFlow(string(out)), nil
}

// acceptedDiffs are test names (or name prefixes ending in '*') with the
// reason each differs through a proxy.
type acceptedDiffs struct {
	entries []acceptedEntry
}

type acceptedEntry struct {
	pattern, why string
}

func loadAccepted(t *testing.T, path string) *acceptedDiffs {
	f, err := os.Open(path)
	must(t, err, "open ", path)
	defer f.Close()
	a := &acceptedDiffs{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pattern, why, ok := strings.Cut(line, " ")
		why = strings.TrimSpace(why)
		if !ok || why == "" {
			t.Fatalf("%s:%d: want \"<test or prefix*> <reason>\"", path, n)
		}
		a.entries = append(a.entries, acceptedEntry{pattern, why})
	}
	must(t, sc.Err(), "read ", path)
	return a
}

func (a *acceptedDiffs) match(name string) (string, bool) {
	name, _, _ = strings.Cut(name, "#")
	for _, e := range a.entries {
		if p, ok := strings.CutSuffix(e.pattern, "*"); ok && strings.HasPrefix(name, p) || e.pattern == name {
			return e.why, true
		}
	}
	return "", false
}

// unused lists exact entries that match no test passing directly and
// failing through s3seal (prefix entries are not reported).
func (a *acceptedDiffs) unused(direct, pass *conformanceResults) []string {
	var out []string
	for _, e := range a.entries {
		if strings.HasSuffix(e.pattern, "*") {
			continue
		}
		if !(direct.pass[e.pattern] && !pass.pass[e.pattern]) {
			out = append(out, e.pattern)
		}
	}
	sort.Strings(out)
	return out
}

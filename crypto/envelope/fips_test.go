package envelope

import (
	"crypto/fips140"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// fipsChild marks the go test run TestFIPS140Only starts.
const fipsChild = "S3SEAL_FIPS140_CHILD"

// TestFIPS140Only runs the tests of the crypto packages again as a
// regulated deployment runs s3seal: built with Go's FIPS 140-3 module
// (GOFIPS140=v1.0.0) and run with GODEBUG=fips140=only, where every
// non-approved algorithm or use fails. Version 2 must be written and read
// there, version 1 read (FORMAT.md, section 12.2). Tests that write
// version 1 from chosen nonces skip themselves there; the log lists them.
// It takes a minute or two (the first build of the module is the slow
// part) and is skipped with -short and under the race detector.
func TestFIPS140Only(t *testing.T) {
	if os.Getenv(fipsChild) == "1" {
		if !fips140.Enforced() {
			t.Fatal("the child run is not in FIPS 140-only mode")
		}
		t.Logf("Go Cryptographic Module %s, FIPS 140-only mode", fips140.Version())
		return
	}
	if testing.Short() || raceEnabled {
		t.Skip("-short or -race: the FIPS 140-only run of the crypto packages is left to the plain run")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not installed")
	}
	pkgs := []string{"./crypto/stream", "./crypto/envelope", "./crypto/keys/local", "./crypto/internal/gcm"}
	cmd := exec.Command(goTool, append([]string{"test", "-count=1", "-v", "-run", "Test"}, pkgs...)...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "GOFIPS140=v1.0.0", "GODEBUG=fips140=only", fipsChild+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("crypto tests in FIPS 140-only mode: %v\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "Go Cryptographic Module v1.0.0, FIPS 140-only mode") {
		t.Fatalf("the child did not run in FIPS 140-only mode with module v1.0.0:\n%s", text)
	}
	for _, p := range pkgs {
		if !strings.Contains(text, "ok  \tgithub.com/s3seal/s3seal/"+strings.TrimPrefix(p, "./")) {
			t.Fatalf("package %s did not pass:\n%s", p, text)
		}
	}
	for _, must := range []string{"--- PASS: TestVectorsV2", "--- PASS: TestRoundTripV2", "--- PASS: TestNonceUniqueness", "--- PASS: TestMultipartV2"} {
		if !strings.Contains(text, must) {
			t.Fatalf("%s did not pass in FIPS 140-only mode", strings.TrimPrefix(must, "--- PASS: "))
		}
	}
	skipped := regexp.MustCompile(`--- SKIP: (\S+)`).FindAllStringSubmatch(text, -1)
	passed := strings.Count(text, "--- PASS: ")
	var names []string
	for _, m := range skipped {
		names = append(names, m[1])
	}
	t.Logf("FIPS 140-only run: %d tests and subtests passed, %d skipped (version 1 writers): %s", passed, len(names), strings.Join(names, " "))
}

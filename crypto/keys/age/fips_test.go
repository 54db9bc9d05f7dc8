package age

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFIPS140OnlyRefused checks that under GODEBUG=fips140=only every entry
// point refuses with ErrFIPS140Only (rather than failing obscurely or, for
// hybrid keys, never returning). The setting is fixed when a process
// starts, so the test runs itself again in a child process with it.
func TestFIPS140OnlyRefused(t *testing.T) {
	if os.Getenv("S3SEAL_AGE_FIPS_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFIPS140OnlyRefused$", "-test.v", "-test.timeout=60s")
		cmd.Env = append(os.Environ(), "GODEBUG=fips140=only", "S3SEAL_AGE_FIPS_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "fips140=only enforced") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	// In the child. The identity is the CCTV vectors' (the child cannot
	// make keys).
	const id = "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7PU2LHT8EH9W6YLNC3SW78XKG"
	if _, err := ParseIdentities([]byte(id)); !errors.Is(err, ErrFIPS140Only) {
		t.Errorf("ParseIdentities: %v", err)
	}
	if _, err := ParseRecipients([]byte("age1pq1example")); !errors.Is(err, ErrFIPS140Only) {
		t.Errorf("ParseRecipients: %v", err)
	}
	if _, err := CreateIdentity(filepath.Join(t.TempDir(), "id"), false, time.Now()); !errors.Is(err, ErrFIPS140Only) {
		t.Errorf("CreateIdentity: %v", err)
	}
	if _, err := New(Config{Recipients: &RecipientSet{}}); !errors.Is(err, ErrFIPS140Only) {
		t.Errorf("New: %v", err)
	}
	t.Log("fips140=only enforced: every entry point refused")
}

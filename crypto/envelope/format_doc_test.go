package envelope

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// FORMAT.md's numbers and worked example must match the code and the
// committed "hello" vector.
func TestFormatDocMatchesVectors(t *testing.T) {
	doc, err := os.ReadFile("../../FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(doc)), " ")
	raw, _ := os.ReadFile(vectorsFile)
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	hello := vs[0]
	if hello.Name != "hello" {
		t.Fatal("first vector is not the worked example")
	}
	flat := func(s string) string { return strings.Join(strings.Fields(s), "") }
	nospace := flat(string(doc))
	for what, want := range map[string]string{
		"metadata value":    hello.Metadata,
		"prk":               hello.PRK,
		"commitment":        hello.Commitment,
		"seal key":          hello.SealKey,
		"segment key":       hello.SegmentKeys["0"],
		"object key":        hello.ObjectKey,
		"data key":          hello.DataKey,
		"ciphertext":        hello.Ciphertext[:62],
		"trailer chunk":     hello.Ciphertext[62:],
		"sealed object key": hello.HeaderHex[len(hello.HeaderHex)-96:],
		"wrapped key":       hello.Wrapped,
	} {
		if !strings.Contains(nospace, want) {
			t.Errorf("FORMAT.md worked example lacks the %s %s", what, want)
		}
	}
	if !strings.Contains(text, fmt.Sprintf("**%d bytes**", MaxFieldSize)) {
		t.Errorf("FORMAT.md does not state MaxFieldSize = %d", MaxFieldSize)
	}
	if !strings.Contains(text, fmt.Sprintf("largest header, %d bytes", MaxSize)) {
		t.Errorf("FORMAT.md does not state MaxSize = %d", MaxSize)
	}
}

// The independent Python decrypter, written from FORMAT.md, decrypts every
// committed vector. Skipped where python3 with the cryptography package is
// not installed.
func TestIndependentDecrypter(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	if exec.Command(py, "-c", "import cryptography").Run() != nil {
		t.Skip("python3 'cryptography' package not installed")
	}
	out, err := exec.Command(py, "testdata/independent_decrypt.py").CombinedOutput()
	if err != nil {
		t.Fatalf("independent decrypter: %v\n%s", err, out)
	}
	if strings.Count(string(out), "ok ") != 10 {
		t.Fatalf("unexpected output:\n%s", out)
	}
}

package envelope

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	// The version 2 worked example is the vector hello-v2.
	var v2 []vectorV2
	raw2, _ := os.ReadFile(vectorsV2File)
	if err := json.Unmarshal(raw2, &v2); err != nil || v2[0].Name != "hello-v2" {
		t.Fatalf("first version 2 vector is not the worked example: %v", err)
	}
	h2 := v2[0]
	for what, want := range map[string]string{
		"metadata value":    h2.Metadata,
		"prk":               h2.PRK,
		"commitment":        h2.Commitment,
		"seal key":          h2.SealKey,
		"seal nonce":        h2.SealNonce,
		"segment salt":      h2.Segments[0].Salt,
		"segment key":       h2.Segments[0].Key,
		"data chunk":        h2.Ciphertext[56:118],
		"trailer chunk":     h2.Ciphertext[118+56:],
		"sealed object key": h2.HeaderHex[len(h2.HeaderHex)-96:],
	} {
		if !strings.Contains(nospace, want) {
			t.Errorf("FORMAT.md version 2 worked example lacks the %s %s", what, want)
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

// Every row of FORMAT.md's nonce-uniqueness table names tests, and each
// named test (and subtest) exists: in the crypto packages, the proxy's,
// rewrap's or the integration tests.
func TestFormatDocNonceTable(t *testing.T) {
	doc, err := os.ReadFile("../../FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "### 12.3 Nonce uniqueness")
	end := strings.Index(text, "### 12.4")
	if start < 0 || end < start {
		t.Fatal("FORMAT.md has no section 12.3")
	}
	var sources strings.Builder
	for _, dir := range []string{".", "../stream", "../keys/local", "../../proxy", "../../deploy/rewrap", "../../integration"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			sources.Write(b)
		}
	}
	src := sources.String()
	rows := 0
	for _, line := range strings.Split(text[start:end], "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| path") || strings.HasPrefix(line, "|---") {
			continue
		}
		rows++
		cells := strings.Split(line, "|")
		last := cells[len(cells)-2]
		names := regexp.MustCompile("`(Test[A-Za-z0-9]+)(/[A-Za-z0-9-]+)?`").FindAllStringSubmatch(last, -1)
		if len(names) == 0 {
			t.Errorf("row without a test: %s", line)
		}
		for _, n := range names {
			if !strings.Contains(src, "func "+n[1]+"(t *testing.T)") {
				t.Errorf("row %q names %s, which does not exist", cells[1], n[1])
			}
			if n[2] != "" && !strings.Contains(src, `t.Run("`+n[2][1:]+`"`) {
				t.Errorf("row %q names subtest %s%s, which does not exist", cells[1], n[1], n[2])
			}
		}
	}
	if rows < 10 {
		t.Fatalf("only %d rows in the nonce-uniqueness table", rows)
	}
}

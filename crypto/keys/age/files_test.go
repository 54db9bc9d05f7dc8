package age

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fage "filippo.io/age"
)

func TestParseRecipientsFile(t *testing.T) {
	a, b := newParty(t, "a", false), newParty(t, "b", false)
	x := newParty(t, "x", true)
	good := "# s3seal recipients\n\n" + a.recipient + "\r\n   \n  # indented comment\n\t" + b.recipient + "  \n" + x.recipient
	s, err := ParseRecipients([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 || s.Hybrid() != 2 || s.Classical() != 1 || s.classical[0] != 7 {
		t.Fatalf("parsed %d recipients (%d hybrid, %d classical at %v)", s.Len(), s.Hybrid(), s.Classical(), s.classical)
	}
	if got := s.Strings(); got[0] != a.recipient || got[2] != x.recipient {
		t.Fatal("order or encoding not kept")
	}
	secretLine := strings.Split(strings.TrimSpace(a.identity), "\n")[2]
	xSecret := strings.Split(strings.TrimSpace(x.identity), "\n")[2]
	for name, tc := range map[string]struct {
		text, want string
	}{
		"empty":             {"# nothing\n\n", "no recipients"},
		"garbage":           {a.recipient + "\n\nhello world\n", "line 3 is not an age recipient"},
		"secret key":        {a.recipient + "\n" + secretLine + "\n", "line 2 holds a secret key"},
		"x25519 secret":     {xSecret, "line 1 holds a secret key"},
		"lower-case secret": {strings.ToLower(xSecret), "line 1 holds a secret key"},
		"plugin secret":     {"AGE-PLUGIN-YUBIKEY-1QQQQQQ", "line 1 holds a secret key"},
		"bad checksum":      {badChecksum(a.recipient), "line 1: malformed age1pq1"},
		"short x25519":      {x.recipient[:20], "line 1: malformed age1 recipient"},
		"ssh":               {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample user@host", "line 1: SSH recipients"},
		"plugin":            {"age1yubikey1qwertyuiop", "line 1: plugin recipients"},
		"tag":               {"age1tag1qwertyuiop", "line 1: tagged"},
		"duplicate":         {a.recipient + "\n# again\n" + a.recipient, "line 3 repeats the recipient of line 1"},
		"too long":          {strings.Repeat("a", maxLineSize+1), "line 1 is longer"},
		"not utf-8":         {"age1\xff", "line 1 is not valid UTF-8"},
		"too many":          {strings.Repeat("\n", 0) + manyRecipients(t, MaxRecipients+1), "more than 10 recipients"},
		"huge":              {strings.Repeat("#", maxFileSize+1), "larger than"},
	} {
		_, err := ParseRecipients([]byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), secretLine[20:40]) || strings.Contains(strings.ToUpper(err.Error()), xSecret[20:40]) || strings.Contains(err.Error(), "hello") {
			t.Errorf("%s: the error shows the line: %v", name, err)
		}
	}
}

func manyRecipients(t *testing.T, n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(newParty(t, "many"+string(rune('a'+i)), true).recipient + "\n")
	}
	return b.String()
}

func TestClassicalNeedsTheSetting(t *testing.T) {
	ctx := context.Background()
	a, x, y := newParty(t, "a", false), newParty(t, "x", true), newParty(t, "y", true)
	for name, tc := range map[string]struct {
		text string
		line string
		warn string
	}{
		"x25519 only": {"# classical\n" + x.recipient + "\n" + y.recipient, "line 2", "X25519 only"},
		"mixed":       {a.recipient + "\n\n" + x.recipient, "line 3", "mix"},
	} {
		s, err := ParseRecipients([]byte(tc.text))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(Config{Recipients: s}); err == nil || !strings.Contains(err.Error(), tc.line) || !strings.Contains(err.Error(), "allow_classical") {
			t.Errorf("%s without allow_classical: %v", name, err)
		}
		p, err := New(Config{Recipients: s, AllowClassical: true})
		if err != nil {
			t.Fatalf("%s with allow_classical: %v", name, err)
		}
		if w := p.Warnings(); len(w) != 1 || !strings.Contains(w[0], tc.warn) {
			t.Errorf("%s: warnings %q", name, w)
		}
		dk, err := p.GenerateDataKey(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Every recipient, of either kind, reads.
		for _, who := range []party{x, a} {
			if !strings.Contains(tc.text, who.recipient) {
				continue
			}
			r := mustProvider(t, nil, []party{who}, false)
			if k, err := r.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil || k != dk.Plaintext {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	if w := mustProvider(t, []party{a}, nil, false).Warnings(); len(w) != 0 {
		t.Errorf("hybrid set warned: %q", w)
	}
	// Identities none of which is a recipient: a warning, not an error.
	b := newParty(t, "b", false)
	if w := mustProvider(t, []party{a}, []party{b}, false).Warnings(); len(w) != 1 || !strings.Contains(w[0], "cannot read back") {
		t.Errorf("warnings %q", w)
	}
}

func TestParseIdentitiesFile(t *testing.T) {
	a, x := newParty(t, "a", false), newParty(t, "x", true)
	ids, err := ParseIdentities([]byte(a.identity + "\r\n\n" + x.identity))
	if err != nil {
		t.Fatal(err)
	}
	if ids.Len() != 2 || ids.Recipients()[0] != a.recipient || ids.Recipients()[1] != x.recipient {
		t.Fatalf("identities %d %q", ids.Len(), ids.Recipients())
	}
	// Several files, and the position of the bad one in errors.
	if _, err := ParseIdentities([]byte(a.identity), []byte("\n"+a.recipient)); err == nil || !strings.Contains(err.Error(), "identity file 2 line 2 is a recipient") {
		t.Errorf("recipient in identity file: %v", err)
	}
	secret := strings.Split(strings.TrimSpace(a.identity), "\n")[2]
	for name, tc := range map[string]struct{ text, want string }{
		"empty":     {"# created: now\n", "no identities"},
		"garbage":   {"# c\nnot a key", "line 2 is not an age identity"},
		"truncated": {secret[:len(secret)-3], "line 1: malformed AGE-SECRET-KEY-PQ-1"},
		"plugin":    {"AGE-PLUGIN-YUBIKEY-1QQQQ", "plugin identities"},
		"encrypted": {"age-encryption.org/v1\n-> scrypt x 10\n", "passphrase-protected"},
		"armored":   {"-----BEGIN AGE ENCRYPTED FILE-----\n", "passphrase-protected"},
	} {
		_, err := ParseIdentities([]byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		} else if strings.Contains(err.Error(), secret[20:40]) {
			t.Errorf("%s: error shows key material", name)
		}
	}
}

func TestFilesOnDisk(t *testing.T) {
	dir := t.TempDir()
	idPath := filepath.Join(dir, "id.txt")
	rcpt, err := CreateIdentity(idPath, false, fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rcpt, "age1pq1") {
		t.Fatalf("recipient %.12s…", rcpt)
	}
	fi, _ := os.Stat(idPath)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file mode %04o", fi.Mode().Perm())
	}
	if _, err := CreateIdentity(idPath, false, fixedTime); !errors.Is(err, ErrExists) {
		t.Fatalf("overwrote: %v", err)
	}
	text, _ := os.ReadFile(idPath)
	if !strings.HasPrefix(string(text), "# created: 2026-01-02T03:04:05Z\n# public key: "+rcpt+"\nAGE-SECRET-KEY-PQ-1") {
		t.Fatalf("identity file layout:\n%.80s", text)
	}
	// The age library reads it as the age tool would.
	if fids, err := fage.ParseIdentities(strings.NewReader(string(text))); err != nil || fids[0].(*fage.HybridIdentity).Recipient().String() != rcpt {
		t.Fatalf("age reads it: %v", err)
	}
	ids, err := LoadIdentities(idPath)
	if err != nil || ids.Recipients()[0] != rcpt {
		t.Fatalf("LoadIdentities: %v", err)
	}
	rPath := filepath.Join(dir, "recipients.txt")
	os.WriteFile(rPath, []byte("# team\n"+rcpt+"\n"), 0o644)
	if s, err := LoadRecipients(rPath); err != nil || s.Strings()[0] != rcpt {
		t.Fatalf("LoadRecipients: %v", err)
	}
	os.Chmod(idPath, 0o640)
	if _, err := LoadIdentities(idPath); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("loose identity file: %v", err)
	}
	if _, err := LoadIdentities(dir); err == nil {
		t.Fatal("a directory loaded")
	}
	if _, err := LoadRecipients(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing file loaded")
	}
	os.WriteFile(rPath, []byte("# team\nbad\n"), 0o644)
	if _, err := LoadRecipients(rPath); err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), rPath) {
		t.Fatalf("bad recipients file: %v", err)
	}
	xPath := filepath.Join(dir, "x.txt")
	xr, err := CreateIdentity(xPath, true, fixedTime)
	if err != nil || !strings.HasPrefix(xr, "age1") || strings.HasPrefix(xr, "age1pq1") {
		t.Fatalf("classical identity: %.12s %v", xr, err)
	}
}

func TestConfigErrors(t *testing.T) {
	a := newParty(t, "a", false)
	s, _ := ParseRecipients([]byte(a.recipient))
	if _, err := New(Config{}); err == nil {
		t.Error("empty config accepted")
	}
	if _, err := New(Config{Recipients: &RecipientSet{}}); err == nil {
		t.Error("empty recipient set accepted")
	}
	for _, name := range []string{"-x", "a b", strings.Repeat("n", maxNameSize+1), "a/b"} {
		if _, err := New(Config{Recipients: s, Name: name}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	p, err := New(Config{Recipients: s, Name: "backups.eu-1"})
	if err != nil || !strings.HasPrefix(p.KeyID(), "backups.eu-1-") {
		t.Fatalf("name: %v %q", err, p.KeyID())
	}
}

// badChecksum changes the last character of a Bech32 string to another
// character of its alphabet, which breaks the checksum.
func badChecksum(s string) string {
	last := s[len(s)-1]
	c := byte('q')
	if last == c {
		c = 'p'
	}
	return s[:len(s)-1] + string(c)
}

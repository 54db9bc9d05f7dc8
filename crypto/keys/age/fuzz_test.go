package age

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// echoes reports whether msg repeats a long, blank-free line of text (a
// key, or anything else from the file): errors name lines, never show them.
func echoes(msg string, text []byte) bool {
	for _, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if len(line) >= 25 && !strings.ContainsAny(line, " \t") && strings.Contains(msg, line) {
			return true
		}
	}
	return false
}

func FuzzParseRecipients(f *testing.F) {
	a, x := newParty(f, "a", false), newParty(f, "x", true)
	for _, s := range []string{
		a.recipient, "# c\n\n" + a.recipient + "\r\n" + x.recipient, a.recipient + "\n" + a.recipient,
		strings.Split(a.identity, "\n")[2], "ssh-ed25519 AAAA", "age1tag1x", "age1yubikey1x", "age1pq1", "age1", "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		s, err := ParseRecipients(text)
		if err != nil {
			if echoes(err.Error(), text) {
				t.Fatalf("error shows a line: %v", err)
			}
			return
		}
		if s.Len() < 1 || s.Len() > MaxRecipients || s.Hybrid()+s.Classical() != s.Len() {
			t.Fatalf("%d recipients", s.Len())
		}
		// The canonical encodings parse again to the same set and id.
		again, err := ParseRecipients([]byte(strings.Join(s.Strings(), "\n")))
		if err != nil || KeyID("n", again.strs) != KeyID("n", s.strs) {
			t.Fatalf("canonical form does not round-trip: %v", err)
		}
	})
}

func FuzzParseIdentities(f *testing.F) {
	a, x := newParty(f, "a", false), newParty(f, "x", true)
	for _, s := range []string{a.identity, x.identity + "\r\n" + a.identity, a.recipient, "AGE-PLUGIN-X-1", "AGE-SECRET-KEY-1", "AGE-SECRET-KEY-PQ-1", "age-encryption.org/v1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		s, err := ParseIdentities(text)
		if err != nil {
			if echoes(err.Error(), text) {
				t.Fatalf("error shows a line: %v", err)
			}
			return
		}
		if s.Len() < 1 || s.Len() > MaxIdentities || len(s.Recipients()) != s.Len() {
			t.Fatalf("%d identities", s.Len())
		}
	})
}

// FuzzDecrypt checks that wrapped keys are not malleable: the only input
// that opens is the committed vector itself, to its data key.
func FuzzDecrypt(f *testing.F) {
	v := loadKnownAnswer(f)
	ids, err := ParseIdentities([]byte(v.Identities))
	if err != nil {
		f.Fatal(err)
	}
	p, err := New(Config{Identities: ids})
	if err != nil {
		f.Fatal(err)
	}
	wrapped, _ := base64.StdEncoding.DecodeString(v.Wrapped)
	f.Add(wrapped)
	f.Add(wrapped[:len(wrapped)-1])
	f.Add([]byte(headerLine + "-> X25519 AAAA\n\n--- AAAA\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := p.Decrypt(context.Background(), in, v.KeyID)
		if err != nil {
			return
		}
		if !bytes.Equal(in, wrapped) || hex.EncodeToString(k[:]) != v.DataKey {
			t.Fatalf("a different input opened (%d bytes)", len(in))
		}
	})
}

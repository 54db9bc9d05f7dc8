package age

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	fage "filippo.io/age"

	"github.com/s3seal/s3seal/crypto/keys"
)

var fixedTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// party is one generated key pair.
type party struct {
	recipient string
	identity  string // identity file text
}

var (
	partiesMu sync.Mutex
	parties   = map[string]party{}
)

// newParty returns the key pair named name, made once per test binary.
func newParty(t testing.TB, name string, classical bool) party {
	t.Helper()
	partiesMu.Lock()
	defer partiesMu.Unlock()
	key := fmt.Sprint(name, classical)
	if p, ok := parties[key]; ok {
		return p
	}
	path := filepath.Join(t.TempDir(), "id")
	r, err := CreateIdentity(path, classical, fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := party{recipient: r, identity: string(text)}
	parties[key] = p
	return p
}

func recipientsText(ps ...party) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.recipient + "\n")
	}
	return b.String()
}

func identitiesText(ps ...party) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.identity)
	}
	return b.String()
}

// mustProvider builds a provider wrapping to to and unwrapping with with
// (write-only if with is empty).
func mustProvider(t testing.TB, to, with []party, allowClassical bool) *Provider {
	t.Helper()
	cfg := Config{AllowClassical: allowClassical}
	if len(to) > 0 {
		rs, err := ParseRecipients([]byte(recipientsText(to...)))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Recipients = rs
	}
	if len(with) > 0 {
		ids, err := ParseIdentities([]byte(identitiesText(with...)))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Identities = ids
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWrappedSizes(t *testing.T) {
	ctx := context.Background()
	a, b, c := newParty(t, "a", false), newParty(t, "b", false), newParty(t, "c", false)
	x, y := newParty(t, "x", true), newParty(t, "y", true)
	for _, tc := range []struct {
		to                []party
		hybrid, classical int
	}{
		{[]party{a}, 1, 0}, {[]party{a, b}, 2, 0}, {[]party{a, b, c}, 3, 0},
		{[]party{x}, 0, 1}, {[]party{x, y}, 0, 2}, {[]party{a, x}, 1, 1},
	} {
		p := mustProvider(t, tc.to, nil, tc.classical > 0)
		dk, err := p.GenerateDataKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := WrappedSize(tc.hybrid, tc.classical)
		if len(dk.Ciphertext) != want || p.Recipients().WrappedSize() != want {
			t.Errorf("%d hybrid + %d X25519: wrapped %d bytes, WrappedSize %d", tc.hybrid, tc.classical, len(dk.Ciphertext), want)
		}
		t.Logf("%d hybrid + %d X25519 recipients: %d bytes", tc.hybrid, tc.classical, len(dk.Ciphertext))
		// The documented structure, line by line.
		lines := strings.Split(string(dk.Ciphertext[:len(dk.Ciphertext)-payloadSize]), "\n")
		if lines[0] != "age-encryption.org/v1" || !strings.HasPrefix(lines[len(lines)-2], "--- ") || lines[len(lines)-1] != "" {
			t.Errorf("header lines %q … %q", lines[0], lines[len(lines)-2])
		}
		for i := range tc.hybrid + tc.classical {
			typ := stanzaHybrid
			if tc.to[i].recipient[:7] != "age1pq1" {
				typ = stanzaX25519
			}
			if !strings.HasPrefix(lines[1+2*i], "-> "+typ+" ") || len(lines[2+2*i]) != 43 {
				t.Errorf("stanza %d: %.30q / %d characters", i, lines[1+2*i], len(lines[2+2*i]))
			}
		}
	}
	if WrappedSize(1, 0) != 1691 || WrappedSize(2, 0) != 3248 || WrappedSize(3, 0) != 4805 || WrappedSize(0, 1) != 232 {
		t.Errorf("documented sizes changed: %d %d %d %d", WrappedSize(1, 0), WrappedSize(2, 0), WrappedSize(3, 0), WrappedSize(0, 1))
	}
	if WrappedSize(MaxRecipients, 0) > MaxWrappedSize || MaxWrappedSize <= keys.MaxWrappedSize {
		t.Error("MaxWrappedSize does not bound the largest set, or fits metadata")
	}
}

func TestRoundTripAnyRecipientDecrypts(t *testing.T) {
	ctx := context.Background()
	all := []party{newParty(t, "a", false), newParty(t, "b", false), newParty(t, "c", false)}
	outsider := newParty(t, "outsider", false)
	for n := 1; n <= 3; n++ {
		to := all[:n]
		w := mustProvider(t, to, nil, false)
		dk, err := w.GenerateDataKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if dk.KeyID != w.KeyID() || !validKeyID(dk.KeyID) {
			t.Fatalf("key id %q", dk.KeyID)
		}
		for i, who := range to {
			r := mustProvider(t, nil, []party{who}, false)
			k, err := r.Decrypt(ctx, dk.Ciphertext, dk.KeyID)
			if err != nil || k != dk.Plaintext {
				t.Fatalf("%d recipients: recipient %d: %v", n, i, err)
			}
		}
		// Several identities, the matching one last.
		r := mustProvider(t, nil, []party{outsider, to[n-1]}, false)
		if k, err := r.Decrypt(ctx, dk.Ciphertext, dk.KeyID); err != nil || k != dk.Plaintext {
			t.Fatalf("%d recipients: identity list: %v", n, err)
		}
		// Not a recipient: the typed wrong-key error.
		o := mustProvider(t, nil, []party{outsider}, false)
		_, err = o.Decrypt(ctx, dk.Ciphertext, dk.KeyID)
		var ue *keys.UnwrapError
		if !errors.As(err, &ue) || !errors.Is(err, ErrNotRecipient) || !keys.IsWrongKey(err) {
			t.Fatalf("%d recipients: outsider: %v", n, err)
		}
	}
}

func TestWriteOnly(t *testing.T) {
	ctx := context.Background()
	a := newParty(t, "a", false)
	w := mustProvider(t, []party{a}, nil, false)
	caps := keys.CapabilitiesOf(w)
	if !caps.WriteOnly || !caps.LargeWrappedKeys() || caps.MaxWrappedSize != MaxWrappedSize || !w.WriteOnly() {
		t.Fatalf("capabilities %+v", caps)
	}
	dk, err := w.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Decrypt(ctx, dk.Ciphertext, dk.KeyID)
	var wo *keys.WriteOnlyError
	if !errors.As(err, &wo) || wo.Operation != "Decrypt" || wo.KeyID != dk.KeyID || keys.IsWrongKey(err) {
		t.Fatalf("Decrypt: %v", err)
	}
	if !strings.Contains(err.Error(), "only public keys") || !strings.Contains(err.Error(), "--identity") {
		t.Errorf("message %q", err)
	}
	if _, err := w.Rewrap(ctx, dk.Ciphertext, dk.KeyID); !errors.As(err, &wo) || wo.Operation != "Rewrap" {
		t.Fatalf("Rewrap: %v", err)
	}
	rw := mustProvider(t, []party{a}, []party{a}, false)
	if c := keys.CapabilitiesOf(rw); c.WriteOnly || !c.LargeWrappedKeys() {
		t.Fatalf("reader capabilities %+v", c)
	}
	// An identity-only provider reads but cannot wrap.
	ro := mustProvider(t, nil, []party{a}, false)
	if _, err := ro.GenerateDataKey(ctx); !errors.Is(err, errNoRecipients) {
		t.Fatalf("identity-only GenerateDataKey: %v", err)
	}
	if _, err := ro.Rewrap(ctx, dk.Ciphertext, dk.KeyID); !errors.Is(err, errNoRecipients) {
		t.Fatalf("identity-only Rewrap: %v", err)
	}
	if ro.KeyID() != "" {
		t.Fatal("identity-only provider has a key id")
	}
}

// TestWrapForeignKey: a write-only provider wraps a data key another
// provider made (moving objects into age), and an identity opens it.
func TestWrapForeignKey(t *testing.T) {
	ctx := context.Background()
	a := newParty(t, "a", false)
	key := [keys.DataKeySize]byte{1, 2, 3}
	w, err := mustProvider(t, []party{a}, nil, false).Wrap(ctx, &key)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := mustProvider(t, nil, []party{a}, false).Decrypt(ctx, w.Ciphertext, w.KeyID); err != nil || k != key {
		t.Fatalf("unwrap: %v", err)
	}
	if key != ([keys.DataKeySize]byte{1, 2, 3}) {
		t.Fatal("Wrap changed the caller's key")
	}
	if _, err := mustProvider(t, nil, []party{a}, false).Wrap(ctx, &key); !errors.Is(err, errNoRecipients) {
		t.Fatalf("identity-only Wrap: %v", err)
	}
}

func TestRewrapToCurrentSet(t *testing.T) {
	ctx := context.Background()
	a, b := newParty(t, "a", false), newParty(t, "b", false)
	old := mustProvider(t, []party{a}, nil, false)
	dk, err := old.GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The new set replaces a by b; the rewrapping s3seal still holds a.
	cur := mustProvider(t, []party{b}, []party{a}, false)
	w, err := cur.Rewrap(ctx, dk.Ciphertext, dk.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if w.KeyID != cur.KeyID() || w.KeyID == dk.KeyID {
		t.Fatalf("rewrapped key id %q (old %q, current %q)", w.KeyID, dk.KeyID, cur.KeyID())
	}
	if k, err := mustProvider(t, nil, []party{b}, false).Decrypt(ctx, w.Ciphertext, w.KeyID); err != nil || k != dk.Plaintext {
		t.Fatalf("new recipient: %v", err)
	}
	if _, err := mustProvider(t, nil, []party{a}, false).Decrypt(ctx, w.Ciphertext, w.KeyID); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("removed recipient still reads: %v", err)
	}
}

// TestTamper flips every byte of a wrapped key two ways, truncates it at
// every length and extends it; with two recipients, it also swaps, drops
// and alters the other recipient's stanza. Nothing but the original opens.
func TestTamper(t *testing.T) {
	ctx := context.Background()
	a, b := newParty(t, "a", false), newParty(t, "b", false)
	r := mustProvider(t, nil, []party{a}, false)
	check := func(what string, bad []byte, keyID string) {
		t.Helper()
		k, err := r.Decrypt(ctx, bad, keyID)
		var ue *keys.UnwrapError
		if !errors.As(err, &ue) {
			t.Fatalf("%s: %v", what, err)
		}
		if k != ([keys.DataKeySize]byte{}) {
			t.Fatalf("%s: key material returned with an error", what)
		}
	}
	one, err := mustProvider(t, []party{a}, nil, false).GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	orig := one.Ciphertext
	for i := range orig {
		// 0x01 keeps most characters in the base64 alphabet (so the
		// change reaches the KEM, the AEAD or the MAC); 0xff never does.
		for _, mask := range []byte{0x01, 0xff} {
			bad := bytes.Clone(orig)
			bad[i] ^= mask
			check(fmt.Sprintf("byte %d ^ %#x", i, mask), bad, one.KeyID)
		}
	}
	for n := range len(orig) {
		check(fmt.Sprintf("truncated to %d", n), orig[:n], one.KeyID)
	}
	check("one byte appended", append(bytes.Clone(orig), 0), one.KeyID)
	check("payload chunk appended", append(bytes.Clone(orig), orig[len(orig)-48:]...), one.KeyID)
	if k, err := r.Decrypt(ctx, orig, one.KeyID); err != nil || k != one.Plaintext {
		t.Fatalf("original no longer opens: %v", err)
	}

	two, err := mustProvider(t, []party{b, a}, nil, false).GenerateDataKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := two.Ciphertext
	hdr, payload := string(w[:len(w)-payloadSize]), string(w[len(w)-payloadSize:])
	lines := strings.SplitAfter(hdr, "\n") // header, b's stanza (2 lines), a's stanza (2 lines), MAC, ""
	// The header MAC covers every stanza and their order.
	check("stanzas swapped", []byte(lines[0]+lines[3]+lines[4]+lines[1]+lines[2]+lines[5]+payload), two.KeyID)
	check("other stanza removed", []byte(lines[0]+lines[3]+lines[4]+lines[5]+payload), two.KeyID)
	check("other stanza doubled", []byte(lines[0]+lines[1]+lines[2]+lines[1]+lines[2]+lines[3]+lines[4]+lines[5]+payload), two.KeyID)
	for i := len(lines[0]); i < len(lines[0])+len(lines[1])+len(lines[2]); i += 7 {
		bad := bytes.Clone(w)
		bad[i] ^= 0x01
		check(fmt.Sprintf("other stanza byte %d", i), bad, two.KeyID)
	}
	if k, err := r.Decrypt(ctx, w, two.KeyID); err != nil || k != two.Plaintext {
		t.Fatalf("original no longer opens: %v", err)
	}
}

func TestShapeIsEnforced(t *testing.T) {
	ctx := context.Background()
	a := newParty(t, "a", false)
	ids := mustProvider(t, nil, []party{a}, false)
	rs, _ := ParseRecipients([]byte(recipientsText(a)))
	encrypt := func(payload []byte, rcpts ...fage.Recipient) []byte {
		var buf bytes.Buffer
		w, err := fage.Encrypt(&buf, rcpts...)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(payload)
		w.Close()
		return buf.Bytes()
	}
	key := bytes.Repeat([]byte{7}, keys.DataKeySize)
	id := KeyID(DefaultName, rs.strs)
	// The same recipient, valid age files, but not data keys.
	for name, file := range map[string][]byte{
		"31-byte payload": encrypt(key[:31], rs.recipients...),
		"33-byte payload": encrypt(append(key, 0), rs.recipients...),
		"empty payload":   encrypt(nil, rs.recipients...),
		"11 stanzas":      encrypt(key, repeat(rs.recipients[0], 11)...),
		"scrypt stanza":   encrypt(key, mustScrypt(t)),
	} {
		_, err := ids.Decrypt(ctx, file, id)
		var ue *keys.UnwrapError
		if !errors.As(err, &ue) || errors.Is(err, ErrNotRecipient) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The valid shape opens, whatever well-formed key id it comes with.
	good := encrypt(key, rs.recipients...)
	for _, kid := range []string{id, "other-0123456789abcdef"} {
		if k, err := ids.Decrypt(ctx, good, kid); err != nil || !bytes.Equal(k[:], key) {
			t.Errorf("key id %q: %v", kid, err)
		}
	}
	for _, kid := range []string{"", "age", "age-0123456789ABCDEF", "age-0123456789abcde", "-0123456789abcdef", "a/b-0123456789abcdef", strings.Repeat("a", 49) + "-0123456789abcdef"} {
		var uk *keys.UnknownKeyError
		if _, err := ids.Decrypt(ctx, good, kid); !errors.As(err, &uk) {
			t.Errorf("key id %q: %v", kid, err)
		}
	}
	// Armored: refused before age sees it.
	if _, err := ids.Decrypt(ctx, append([]byte("-----BEGIN AGE ENCRYPTED FILE-----\n"), good...), id); err == nil {
		t.Error("armored input accepted")
	}
	big := make([]byte, MaxWrappedSize+1)
	copy(big, good)
	if _, err := ids.Decrypt(ctx, big, id); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized: %v", err)
	}
}

func repeat(r fage.Recipient, n int) []fage.Recipient {
	out := make([]fage.Recipient, n)
	for i := range out {
		out[i] = r
	}
	return out
}

func mustScrypt(t *testing.T) fage.Recipient {
	r, err := fage.NewScryptRecipient("passphrase")
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(10)
	return r
}

func TestKeyIDStable(t *testing.T) {
	a, b, c := newParty(t, "a", false), newParty(t, "b", false), newParty(t, "c", false)
	parse := func(text string) *RecipientSet {
		t.Helper()
		s, err := ParseRecipients([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := KeyID("backups", parse(recipientsText(a, b)).strs)
	same := []string{
		recipientsText(b, a),
		"# backups\n\n  " + a.recipient + "  \r\n#" + c.recipient + "\n\t" + b.recipient + "\r\n\n",
		strings.ToUpper(a.recipient) + "\n" + b.recipient, // Bech32 is case-insensitive; the canonical form is lower case
	}
	for i, text := range same {
		s, err := ParseRecipients([]byte(text))
		if err != nil {
			// An all-upper-case recipient fails the age1pq1 prefix: fine,
			// but it must be refused, not mis-hashed.
			if i == 2 {
				continue
			}
			t.Fatal(err)
		}
		if got := KeyID("backups", s.strs); got != base {
			t.Errorf("variant %d: key id %s, want %s", i, got, base)
		}
	}
	for i, text := range []string{recipientsText(a), recipientsText(a, b, c), recipientsText(a, c)} {
		if KeyID("backups", parse(text).strs) == base {
			t.Errorf("different set %d has the same key id", i)
		}
	}
	if KeyID("other", parse(recipientsText(a, b)).strs)[len("other"):] != base[len("backups"):] {
		t.Error("the name changes the hash")
	}
	if !strings.HasPrefix(base, "backups-") || len(base) != len("backups-")+16 || !validKeyID(base) {
		t.Errorf("key id %q", base)
	}
	// A fixed set has a fixed id across releases (pinned).
	if got := KeyID("age", []string{"age1pq1example", "age1example"}); got != "age-"+pinnedHash {
		t.Errorf("KeyID changed: %s", got)
	}
}

// pinnedHash is KeyID's hash of {"age1example", "age1pq1example"}:
// SHA-256("s3seal age recipient set" 0x00 || BE32(11) || "age1example" ||
// BE32(14) || "age1pq1example"), first 8 bytes.
const pinnedHash = "d99b139ebbf5089a"

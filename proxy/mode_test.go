package proxy

import (
	"testing"

	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
)

// TestModeTablesComplete walks every operation s3seal knows in every mode:
// each must have an explicit decision, so that an operation added to the
// S3 table fails here until every mode says what it does with it.
func TestModeTablesComplete(t *testing.T) {
	for _, m := range policy.Modes() {
		tab, ok := modeTables[m]
		if !ok {
			t.Errorf("mode %s has no table", m)
			continue
		}
		for _, op := range s3.Ops() {
			a, ok := tab[op]
			switch {
			case !ok:
				t.Errorf("mode %s: no decision for %s", m, op)
			case a.serve == nil || (a.kind != "forward" && a.kind != "refuse" && a.kind != "handle"):
				t.Errorf("mode %s: %s has an empty decision", m, op)
			}
		}
		for op := range tab {
			if _, known := s3.Lookup(op); !known {
				t.Errorf("mode %s decides %q, which is not an S3 operation s3seal knows", m, op)
			}
		}
	}
}

// TestEncryptingModesRefuseWhatTheyCannotEncrypt pins the decisions that
// keep plaintext out of encrypting locations.
func TestEncryptingModesRefuseWhatTheyCannotEncrypt(t *testing.T) {
	cases := []struct {
		mode policy.Mode
		op   s3.Op
		kind string
	}{
		{policy.Envelope, s3.OpPostObject, "refuse"},
		{policy.Envelope, s3.OpSelectObjectContent, "refuse"},
		{policy.Envelope, s3.OpGetObjectAttributes, "refuse"},
		{policy.Envelope, s3.OpGetObjectTorrent, "refuse"},
		{policy.Envelope, s3.OpPutObject, "handle"},
		{policy.Envelope, s3.OpUploadPart, "handle"},
		{policy.Envelope, s3.OpCopyObject, "handle"},
		{policy.SSES3, s3.OpPostObject, "refuse"},
		{policy.SSEKMS, s3.OpSelectObjectContent, "refuse"},
		{policy.SSEC, s3.OpPutObject, "handle"},
		{policy.SSEC, s3.OpUploadPart, "handle"},
		{policy.Passthrough, s3.OpPostObject, "refuse"},
		{policy.Passthrough, s3.OpUploadPartCopy, "handle"},
		{policy.Passthrough, s3.OpDeleteObjects, "handle"},
	}
	for _, c := range cases {
		if got := modeTables[c.mode][c.op].kind; got != c.kind {
			t.Errorf("mode %s, %s: %q, want %q", c.mode, c.op, got, c.kind)
		}
	}
}

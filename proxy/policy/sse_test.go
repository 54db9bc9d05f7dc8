package policy

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestStrengthOrder(t *testing.T) {
	order := []Algorithm{None, AES256, AWSKMS, AWSKMSDSSE}
	for i, a := range order {
		for j, b := range order {
			if (a.Strength() < b.Strength()) != (i < j) {
				t.Errorf("%q vs %q: strengths %d, %d", a, b, a.Strength(), b.Strength())
			}
		}
	}
	for _, bad := range []Algorithm{"aes256", "aws:kms:", "SSE-C", "AES128"} {
		if bad.Strength() != -1 {
			t.Errorf("%q has strength %d", bad, bad.Strength())
		}
	}
	if !AWSKMS.KMS() || !AWSKMSDSSE.KMS() || AES256.KMS() || None.KMS() {
		t.Error("KMS() wrong")
	}
}

func TestSameKMSKey(t *testing.T) {
	cases := []struct {
		a, b string
		same bool
	}{
		{"k1", "k1", true},
		{"arn:aws:kms:us-east-1:111:key/k1", "k1", true},
		{"k1", "arn:aws:kms:us-east-1:111:key/k1", true},
		{"arn:aws:kms:us-east-1:111:alias/prod", "alias/prod", true},
		{"arn:aws:kms:s3seal-test-key", "s3seal-test-key", true}, // MinIO's form
		{"arn:aws:kms:us-east-1:111:key/k12", "k1", false},
		{"xk1", "k1", false},
		{"alias/prod", "k1", false},
		{"arn:aws:kms:us-east-1:111:key/k1", "arn:aws:kms:us-east-1:222:key/k1", false},
	}
	for _, c := range cases {
		if got := SameKMSKey(c.a, c.b); got != c.same {
			t.Errorf("SameKMSKey(%q, %q) = %t", c.a, c.b, got)
		}
	}
}

func TestResolveSSE(t *testing.T) {
	yes, no := true, false
	s3 := &Rule{Name: "s3", Mode: SSES3}
	kms := &Rule{Name: "kms", Mode: SSEKMS, KMSKeyID: "k1", KMSContext: map[string]string{"team": "a"}, BucketKey: &yes}
	kmsDefault := &Rule{Name: "kms-default", Mode: SSEKMS}
	strict := &Rule{Name: "strict", Mode: SSEKMS, KMSKeyID: "k1", ClientSSE: ClientSSERefuse}
	type result int
	const (
		ok result = iota
		refused
		invalid
	)
	cases := []struct {
		name   string
		rule   *Rule
		client SSE
		want   result
		out    SSE
	}{
		{"s3 nothing", s3, SSE{}, ok, SSE{Algorithm: AES256}},
		{"s3 same", s3, SSE{Algorithm: AES256}, ok, SSE{Algorithm: AES256}},
		{"s3 kms is stronger", s3, SSE{Algorithm: AWSKMS, KMSKeyID: "mine"}, ok, SSE{Algorithm: AWSKMS, KMSKeyID: "mine"}},
		{"s3 dsse is stronger", s3, SSE{Algorithm: AWSKMSDSSE}, ok, SSE{Algorithm: AWSKMSDSSE}},
		{"s3 kms params need kms", s3, SSE{KMSKeyID: "k"}, invalid, SSE{}},
		{"s3 unknown algorithm", s3, SSE{Algorithm: "ROT13"}, invalid, SSE{}},
		{"kms nothing", kms, SSE{}, ok, SSE{Algorithm: AWSKMS, KMSKeyID: "k1", KMSContext: map[string]string{"team": "a"}, BucketKey: &yes}},
		{"kms weaker", kms, SSE{Algorithm: AES256}, refused, SSE{}},
		{"kms other key", kms, SSE{Algorithm: AWSKMS, KMSKeyID: "k2"}, refused, SSE{}},
		{"kms same key by ARN", kms, SSE{Algorithm: AWSKMS, KMSKeyID: "arn:aws:kms:r:1:key/k1"}, ok,
			SSE{Algorithm: AWSKMS, KMSKeyID: "arn:aws:kms:r:1:key/k1", KMSContext: map[string]string{"team": "a"}, BucketKey: &yes}},
		{"kms params without algorithm", kms, SSE{KMSContext: map[string]string{"x": "1"}}, ok,
			SSE{Algorithm: AWSKMS, KMSKeyID: "k1", KMSContext: map[string]string{"team": "a", "x": "1"}, BucketKey: &yes}},
		{"kms dsse with the key", kms, SSE{Algorithm: AWSKMSDSSE}, ok,
			SSE{Algorithm: AWSKMSDSSE, KMSKeyID: "k1", KMSContext: map[string]string{"team": "a"}, BucketKey: &yes}},
		{"kms dsse other key", kms, SSE{Algorithm: AWSKMSDSSE, KMSKeyID: "k9"}, refused, SSE{}},
		{"kms context conflict", kms, SSE{KMSContext: map[string]string{"team": "b"}}, refused, SSE{}},
		{"kms context same pair", kms, SSE{KMSContext: map[string]string{"team": "a"}}, ok,
			SSE{Algorithm: AWSKMS, KMSKeyID: "k1", KMSContext: map[string]string{"team": "a"}, BucketKey: &yes}},
		{"kms bucket key conflict", kms, SSE{BucketKey: &no}, refused, SSE{}},
		{"kms default any key", kmsDefault, SSE{Algorithm: AWSKMS, KMSKeyID: "mine", BucketKey: &no}, ok,
			SSE{Algorithm: AWSKMS, KMSKeyID: "mine", BucketKey: &no}},
		{"kms default nothing", kmsDefault, SSE{}, ok, SSE{Algorithm: AWSKMS}},
		{"strict same", strict, SSE{Algorithm: AWSKMS, KMSKeyID: "k1"}, ok, SSE{Algorithm: AWSKMS, KMSKeyID: "k1"}},
		{"strict stronger", strict, SSE{Algorithm: AWSKMSDSSE}, refused, SSE{}},
		{"strict extra context", strict, SSE{KMSContext: map[string]string{"x": "1"}}, refused, SSE{}},
		{"strict bucket key", strict, SSE{BucketKey: &yes}, refused, SSE{}},
		{"other modes untouched", &Rule{Name: "p", Mode: Passthrough}, SSE{Algorithm: AES256}, ok, SSE{Algorithm: AES256}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.rule.ResolveSSE(c.client)
			var re *RefusedError
			var ie *InvalidSSEError
			switch c.want {
			case refused:
				if !errors.As(err, &re) || re.Rule != c.rule.Name || !strings.Contains(err.Error(), c.rule.Name) {
					t.Fatalf("got %+v, %v; want a refusal naming the rule", got, err)
				}
				return
			case invalid:
				if !errors.As(err, &ie) {
					t.Fatalf("got %+v, %v; want InvalidSSEError", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Algorithm != c.out.Algorithm || got.KMSKeyID != c.out.KMSKeyID || !maps.Equal(got.KMSContext, c.out.KMSContext) ||
				(got.BucketKey == nil) != (c.out.BucketKey == nil) || (got.BucketKey != nil && *got.BucketKey != *c.out.BucketKey) {
				t.Errorf("got %+v, want %+v", got, c.out)
			}
			// Whatever is kept is at least as strong as the rule.
			if c.rule.Mode.ServerSide() {
				min := AES256
				if c.rule.Mode == SSEKMS {
					min = AWSKMS
				}
				if got.Algorithm.Strength() < min.Strength() {
					t.Errorf("resolved %s is weaker than the rule", got.Algorithm)
				}
			}
		})
	}
	// The rule's own context is never modified by merging.
	if len(kms.KMSContext) != 1 {
		t.Errorf("rule context modified: %v", kms.KMSContext)
	}
}

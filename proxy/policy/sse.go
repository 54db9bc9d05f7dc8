package policy

import (
	"fmt"
	"maps"
	"strings"
)

// Algorithm is a server-side encryption algorithm as S3 names it in the
// x-amz-server-side-encryption header.
type Algorithm string

// Algorithms S3 knows. None is the absence of the header.
const (
	None       Algorithm = ""
	AES256     Algorithm = "AES256"
	AWSKMS     Algorithm = "aws:kms"
	AWSKMSDSSE Algorithm = "aws:kms:dsse"
)

// Strength orders the algorithms: None 0 < AES256 1 < aws:kms 2 <
// aws:kms:dsse 3. An unknown algorithm is -1.
func (a Algorithm) Strength() int {
	switch a {
	case None:
		return 0
	case AES256:
		return 1
	case AWSKMS:
		return 2
	case AWSKMSDSSE:
		return 3
	}
	return -1
}

// KMS reports whether a is one of the KMS algorithms.
func (a Algorithm) KMS() bool { return a == AWSKMS || a == AWSKMSDSSE }

// SSE is the server-side encryption (other than SSE-C) a write asks for:
// the x-amz-server-side-encryption header and its KMS companions, decoded.
// The zero value asks for nothing.
type SSE struct {
	Algorithm Algorithm
	// KMSKeyID is x-amz-server-side-encryption-aws-kms-key-id.
	KMSKeyID string
	// KMSContext is x-amz-server-side-encryption-context, decoded.
	KMSContext map[string]string
	// BucketKey is x-amz-server-side-encryption-bucket-key-enabled; nil
	// when absent.
	BucketKey *bool
}

// Empty reports whether s asks for nothing at all.
func (s SSE) Empty() bool {
	return s.Algorithm == None && s.KMSKeyID == "" && len(s.KMSContext) == 0 && s.BucketKey == nil
}

// RefusedError reports that a client's own encryption choice is refused by
// a rule: it is weaker than the rule, or the rule accepts no other choice.
// Its message says what to change; it never contains key material.
type RefusedError struct {
	Rule   string
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("s3seal policy rule %q refuses this request's server-side encryption headers: %s", e.Rule, e.Reason)
}

// InvalidSSEError reports encryption headers that S3 itself would refuse
// (an unknown algorithm, KMS parameters without a KMS algorithm).
type InvalidSSEError struct{ Reason string }

func (e *InvalidSSEError) Error() string { return e.Reason }

// ResolveSSE returns the server-side encryption a write under an sse-s3 or
// sse-kms rule asks the store for, given what the client asked for itself
// (the zero SSE when nothing). The result is the rule's settings where the
// client chose nothing, and the client's choice where it is at least as
// strong (see the package documentation). A refused choice is a
// *RefusedError, invalid headers an *InvalidSSEError. For other modes
// ResolveSSE returns the client's choice unchanged.
func (r *Rule) ResolveSSE(client SSE) (SSE, error) {
	var want SSE
	switch r.Mode {
	case SSES3:
		want = SSE{Algorithm: AES256}
	case SSEKMS:
		want = SSE{Algorithm: AWSKMS, KMSKeyID: r.KMSKeyID, KMSContext: r.KMSContext, BucketKey: r.BucketKey}
	default:
		return client, nil
	}
	refuse := func(format string, args ...any) (SSE, error) {
		return SSE{}, &RefusedError{Rule: r.Name, Reason: fmt.Sprintf(format, args...)}
	}
	if client.Algorithm.Strength() < 0 {
		return SSE{}, &InvalidSSEError{Reason: fmt.Sprintf("The encryption method %q is not supported; use AES256, aws:kms or aws:kms:dsse.", client.Algorithm)}
	}
	kmsParams := client.KMSKeyID != "" || len(client.KMSContext) > 0 || client.BucketKey != nil
	alg := client.Algorithm
	if alg == None {
		alg = want.Algorithm
	}
	if kmsParams && !alg.KMS() {
		return SSE{}, &InvalidSSEError{Reason: "The KMS key id, encryption context and bucket key headers need x-amz-server-side-encryption: aws:kms."}
	}
	if alg.Strength() < want.Algorithm.Strength() {
		return refuse("it asks for %s, which is weaker than the rule's %s; remove the x-amz-server-side-encryption header or ask for %s or stronger", alg, want.Algorithm, want.Algorithm)
	}
	strict := r.ClientSSEChoice() == ClientSSERefuse
	if strict && alg != want.Algorithm {
		return refuse("it asks for %s and the rule accepts only its own %s; remove the x-amz-server-side-encryption header", alg, want.Algorithm)
	}
	out := SSE{Algorithm: alg, KMSKeyID: client.KMSKeyID, BucketKey: client.BucketKey}
	if !alg.KMS() {
		return out, nil
	}
	// KMS key: the rule's key, if it names one, is the only acceptable one.
	switch {
	case want.KMSKeyID == "":
	case client.KMSKeyID == "":
		out.KMSKeyID = want.KMSKeyID
	case !SameKMSKey(client.KMSKeyID, want.KMSKeyID):
		return refuse("it names another KMS key than the rule's %q; remove the x-amz-server-side-encryption-aws-kms-key-id header", want.KMSKeyID)
	}
	if strict && client.KMSKeyID != "" && want.KMSKeyID == "" {
		return refuse("it names a KMS key and the rule uses the store's default key; remove the x-amz-server-side-encryption-aws-kms-key-id header")
	}
	// Context: the rule's pairs, plus the client's that do not conflict.
	if len(client.KMSContext) > 0 || len(want.KMSContext) > 0 {
		ctx := maps.Clone(want.KMSContext)
		if ctx == nil {
			ctx = map[string]string{}
		}
		for k, v := range client.KMSContext {
			rv, ok := want.KMSContext[k]
			if ok && rv != v {
				return refuse("its encryption context sets %q, which the rule sets to another value", k)
			}
			if strict && !ok {
				return refuse("its encryption context adds %q and the rule accepts only its own context", k)
			}
			ctx[k] = v
		}
		out.KMSContext = ctx
	}
	// Bucket key: the rule's setting, if any, wins; a conflict is refused.
	if want.BucketKey != nil {
		if client.BucketKey != nil && *client.BucketKey != *want.BucketKey {
			return refuse("it sets the bucket key to %t and the rule to %t; remove the x-amz-server-side-encryption-bucket-key-enabled header", *client.BucketKey, *want.BucketKey)
		}
		out.BucketKey = want.BucketKey
	} else if strict && client.BucketKey != nil {
		return refuse("it sets the bucket key and the rule leaves it to the bucket; remove the x-amz-server-side-encryption-bucket-key-enabled header")
	}
	return out, nil
}

// SameKMSKey reports whether two KMS key references name the same key as
// far as their text tells: equal, or one an ARN ending in the other
// (":key/ID", ":alias/NAME"). A key id and an alias of the same key are
// not recognised as the same.
func SameKMSKey(a, b string) bool {
	if a == b {
		return true
	}
	tail := func(arn, id string) bool {
		return strings.HasPrefix(arn, "arn:") && (strings.HasSuffix(arn, ":"+id) || strings.HasSuffix(arn, ":key/"+id))
	}
	return tail(a, b) || tail(b, a)
}

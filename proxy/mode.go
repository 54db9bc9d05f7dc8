package proxy

import (
	"github.com/s3seal/s3seal/proxy/policy"
	"github.com/s3seal/s3seal/proxy/s3"
	"github.com/s3seal/s3seal/proxy/s3err"
	"github.com/s3seal/s3seal/proxy/upstream"
)

// Modes. A policy rule's mode decides what happens to each operation under
// it, and says so for every operation s3seal knows: each mode is a table
// from operation to action, and TestModeTablesComplete fails when an
// operation of s3.Ops() is missing from any table. Nothing is forwarded
// by omission.
//
// Authorization (package authz) has already refused what the client may
// not do and what deny rules forbid, for every key the request touches;
// the modes only decide how an allowed request is carried out.

// serveFunc carries out one operation under a mode.
type serveFunc func(h *Handler, w *responseWriter, rt *Runtime, q *request)

// action is what a mode does with an operation.
type action struct {
	// kind names the decision for tests and documentation: "forward",
	// "refuse" or "handle".
	kind  string
	serve serveFunc
}

// forwardAs passes an operation to the store with only the ETags the
// client sees mapped back (conditional headers); nothing is encrypted.
func forwardAs() action {
	return action{kind: "forward", serve: func(h *Handler, w *responseWriter, _ *Runtime, q *request) {
		h.forwardWith(w, q, q.auth, hooks{request: func(u *upstream.Request) error {
			mapConditionalHeaders(u.Header)
			return nil
		}})
	}}
}

// plain forwards an operation unchanged.
func plain() action {
	return action{kind: "forward", serve: func(h *Handler, w *responseWriter, _ *Runtime, q *request) {
		h.forward(w, q, q.auth)
	}}
}

// refuse answers an operation with err under every rule of the mode.
func refuse(err func(q *request) error) action {
	return action{kind: "refuse", serve: func(h *Handler, w *responseWriter, _ *Runtime, q *request) {
		h.fail(w, q, err(q))
	}}
}

func handle(f serveFunc) action { return action{kind: "handle", serve: f} }

// Operation groups the tables share. They are lists of names, not
// categories computed from the operation table, so that a new operation
// belongs to none of them until someone decides.
var (
	listingOps = []s3.Op{s3.OpListObjects, s3.OpListObjectsV2, s3.OpListObjectVersions, s3.OpListMultipartUploads}
	// bucketOps carry no object data: bucket lifecycle, location and
	// configuration (authorization limits configuration writes to
	// administrators).
	bucketOps = []s3.Op{
		s3.OpCreateBucket, s3.OpDeleteBucket, s3.OpHeadBucket, s3.OpGetBucketLocation,
		"GetBucketAccelerateConfiguration", "PutBucketAccelerateConfiguration",
		"GetBucketAcl", "PutBucketAcl",
		"GetBucketAnalyticsConfiguration", "PutBucketAnalyticsConfiguration", "DeleteBucketAnalyticsConfiguration", "ListBucketAnalyticsConfigurations",
		"GetBucketCors", "PutBucketCors", "DeleteBucketCors",
		"GetBucketEncryption", "PutBucketEncryption", "DeleteBucketEncryption",
		"GetBucketIntelligentTieringConfiguration", "PutBucketIntelligentTieringConfiguration", "DeleteBucketIntelligentTieringConfiguration", "ListBucketIntelligentTieringConfigurations",
		"GetBucketInventoryConfiguration", "PutBucketInventoryConfiguration", "DeleteBucketInventoryConfiguration", "ListBucketInventoryConfigurations",
		"GetBucketLifecycleConfiguration", "PutBucketLifecycleConfiguration", "DeleteBucketLifecycle",
		"GetBucketLogging", "PutBucketLogging",
		"GetBucketMetricsConfiguration", "PutBucketMetricsConfiguration", "DeleteBucketMetricsConfiguration", "ListBucketMetricsConfigurations",
		"GetBucketNotificationConfiguration", "PutBucketNotificationConfiguration",
		"GetObjectLockConfiguration", "PutObjectLockConfiguration",
		"GetBucketOwnershipControls", "PutBucketOwnershipControls", "DeleteBucketOwnershipControls",
		"GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy", "GetBucketPolicyStatus",
		"GetPublicAccessBlock", "PutPublicAccessBlock", "DeletePublicAccessBlock",
		"GetBucketReplication", "PutBucketReplication", "DeleteBucketReplication",
		"GetBucketRequestPayment", "PutBucketRequestPayment",
		"GetBucketTagging", "PutBucketTagging", "DeleteBucketTagging",
		"GetBucketVersioning", "PutBucketVersioning",
		"GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite",
	}
	// objectMetaOps read or change an object's metadata kept beside its
	// data (tags, ACL, retention, legal hold), delete it, or restore an
	// archived copy: the data itself is not touched.
	objectMetaOps = []s3.Op{
		s3.OpDeleteObject,
		s3.OpGetObjectAcl, s3.OpPutObjectAcl,
		s3.OpGetObjectTagging, s3.OpPutObjectTagging, s3.OpDeleteObjectTagging,
		s3.OpGetObjectRetention, s3.OpPutObjectRetention,
		s3.OpGetObjectLegalHold, s3.OpPutObjectLegalHold,
		s3.OpRestoreObject,
	}
)

// table builds a mode table from groups and per-operation entries.
func table(groups map[*[]s3.Op]action, ops map[s3.Op]action) map[s3.Op]action {
	t := map[s3.Op]action{}
	for g, a := range groups {
		for _, op := range *g {
			t[op] = a
		}
	}
	for op, a := range ops {
		t[op] = a
	}
	return t
}

// modeTables are the decisions of every mode.
var modeTables = map[policy.Mode]map[s3.Op]action{
	policy.Passthrough: passthroughTable(),
	// A deny rule's scope is enforced by authorization; what it lets
	// through is passed through.
	policy.Deny:     passthroughTable(),
	policy.SSES3:    sseTable(),
	policy.SSEKMS:   sseTable(),
	policy.SSEC:     sseTable(),
	policy.Envelope: envelopeTable(),
}

func passthroughTable() map[s3.Op]action {
	return table(map[*[]s3.Op]action{
		&listingOps:    handle((*Handler).serveListing),
		&bucketOps:     plain(),
		&objectMetaOps: plain(),
	}, map[s3.Op]action{
		s3.OpListBuckets:             handle((*Handler).serveListBuckets),
		s3.OpDeleteObjects:           handle((*Handler).serveDeleteObjects),
		s3.OpDeleteBucket:            handle((*Handler).serveDeleteBucket),
		s3.OpGetObject:               plain(),
		s3.OpHeadObject:              plain(),
		s3.OpPutObject:               plain(),
		s3.OpCopyObject:              handle((*Handler).passCopy),
		s3.OpGetObjectTorrent:        plain(),
		s3.OpGetObjectAttributes:     plain(),
		s3.OpCreateMultipartUpload:   plain(),
		s3.OpUploadPart:              plain(),
		s3.OpUploadPartCopy:          handle((*Handler).passPartCopy),
		s3.OpCompleteMultipartUpload: plain(),
		s3.OpAbortMultipartUpload:    plain(),
		s3.OpListParts:               plain(),
		s3.OpSelectObjectContent:     plain(),
		s3.OpPostObject:              refuse(errPostObject),
	})
}

func sseTable() map[s3.Op]action {
	sse := func(f func(h *Handler, w *responseWriter, rt *Runtime, s *SSE, q *request)) action {
		return handle(func(h *Handler, w *responseWriter, rt *Runtime, q *request) {
			s := rt.SSE
			if s == nil {
				s = NewSSE(SSEOptions{})
			}
			if err := h.sseClientKeys(s, q); err != nil {
				h.fail(w, q, err)
				return
			}
			f(h, w, rt, s, q)
		})
	}
	forward := sse(func(h *Handler, w *responseWriter, _ *Runtime, _ *SSE, q *request) { h.sseForward(w, q) })
	return table(map[*[]s3.Op]action{
		&listingOps:    handle((*Handler).serveListing),
		&bucketOps:     forward,
		&objectMetaOps: forward,
	}, map[s3.Op]action{
		s3.OpListBuckets:             handle((*Handler).serveListBuckets),
		s3.OpDeleteObjects:           handle((*Handler).serveDeleteObjects),
		s3.OpDeleteBucket:            handle((*Handler).serveDeleteBucket),
		s3.OpGetObject:               sse(func(h *Handler, w *responseWriter, _ *Runtime, s *SSE, q *request) { h.sseRead(w, s, q) }),
		s3.OpHeadObject:              sse(func(h *Handler, w *responseWriter, _ *Runtime, s *SSE, q *request) { h.sseRead(w, s, q) }),
		s3.OpGetObjectAttributes:     sse(func(h *Handler, w *responseWriter, _ *Runtime, s *SSE, q *request) { h.sseRead(w, s, q) }),
		s3.OpPutObject:               sse((*Handler).sseWrite),
		s3.OpCreateMultipartUpload:   sse((*Handler).sseWrite),
		s3.OpCopyObject:              sse((*Handler).sseCopy),
		s3.OpUploadPartCopy:          sse((*Handler).sseCopy),
		s3.OpUploadPart:              sse(func(h *Handler, w *responseWriter, _ *Runtime, s *SSE, q *request) { h.ssePart(w, s, q) }),
		s3.OpCompleteMultipartUpload: sse(func(h *Handler, w *responseWriter, _ *Runtime, s *SSE, q *request) { h.ssePart(w, s, q) }),
		s3.OpListParts:               sse(func(h *Handler, w *responseWriter, _ *Runtime, s *SSE, q *request) { h.sseListParts(w, s, q) }),
		s3.OpAbortMultipartUpload:    forward,
		s3.OpGetObjectTorrent:        forward,
		s3.OpPostObject:              refuse(errPostObject),
		s3.OpSelectObjectContent: refuse(func(q *request) error {
			return s3err.NotImplemented.WithMessage("SelectObjectContent is not available under s3seal policy rule %q (%s).", q.rule.Name, q.rule.Mode)
		}),
	})
}

func envelopeTable() map[s3.Op]action {
	env := func(f serveFunc) action {
		return handle(func(h *Handler, w *responseWriter, rt *Runtime, q *request) {
			if rt.Keys == nil {
				h.fail(w, q, errNoKeys)
				return
			}
			f(h, w, rt, q)
		})
	}
	return table(map[*[]s3.Op]action{
		&listingOps:    handle((*Handler).serveListing),
		&bucketOps:     forwardAs(),
		&objectMetaOps: forwardAs(),
	}, map[s3.Op]action{
		s3.OpListBuckets:             handle((*Handler).serveListBuckets),
		s3.OpDeleteObjects:           handle((*Handler).serveDeleteObjects),
		s3.OpDeleteBucket:            handle((*Handler).serveDeleteBucket),
		s3.OpGetObject:               env((*Handler).envGet),
		s3.OpHeadObject:              env((*Handler).envGet),
		s3.OpPutObject:               env((*Handler).envPut),
		s3.OpCopyObject:              env((*Handler).envCopy),
		s3.OpCreateMultipartUpload:   env((*Handler).envCreateUpload),
		s3.OpUploadPart:              env((*Handler).envUploadPart),
		s3.OpUploadPartCopy:          env((*Handler).envUploadPartCopy),
		s3.OpCompleteMultipartUpload: env((*Handler).envComplete),
		s3.OpAbortMultipartUpload:    env((*Handler).envAbort),
		s3.OpListParts:               env(func(h *Handler, w *responseWriter, _ *Runtime, q *request) { h.envListParts(w, q) }),
		// s3seal's tag (the part-set record of multipart objects) is
		// hidden from clients, refused from them, and kept when they
		// replace or delete their tags.
		s3.OpGetObjectTagging:    handle((*Handler).envGetTagging),
		s3.OpPutObjectTagging:    handle((*Handler).envPutTagging),
		s3.OpDeleteObjectTagging: handle((*Handler).envDeleteTagging),
		s3.OpPostObject:          refuse(errPostObject),
		s3.OpSelectObjectContent: refuse(func(q *request) error {
			return s3err.NotImplemented.WithMessage("S3 Select cannot read client-side encrypted objects; refused under envelope policy %q.", q.rule.Name)
		}),
		s3.OpGetObjectAttributes: refuse(func(q *request) error {
			return s3err.NotImplemented.WithMessage("GetObjectAttributes would reveal ciphertext sizes and checksums; refused under envelope policy %q. Use HeadObject.", q.rule.Name)
		}),
		s3.OpGetObjectTorrent: refuse(func(q *request) error {
			return s3err.NotImplemented.WithMessage("A torrent of a client-side encrypted object would serve ciphertext; refused under envelope policy %q.", q.rule.Name)
		}),
	})
}

var errNoKeys = s3err.InternalError.WithMessage("s3seal has an envelope policy but no key provider; set keys (S3SEAL_KEYS).")

func errPostObject(q *request) error {
	return s3err.NotImplemented.WithMessage("Browser-form (POST) uploads are not supported by s3seal (policy rule %q): the form names the key in its body, which s3seal cannot authorize or encrypt before the data reaches the store. Upload with PUT.", q.rule.Name)
}

// dispatch hands an authorized request to its mode.
func (h *Handler) dispatch(w *responseWriter, rt *Runtime, q *request) {
	t, ok := modeTables[q.rule.Mode]
	if !ok {
		h.fail(w, q, s3err.NotImplemented.WithMessage("s3seal policy mode %s is not available in this build.", q.rule.Mode))
		return
	}
	a, ok := t[q.req.Op]
	if !ok {
		// TestModeTablesComplete keeps this from happening.
		h.fail(w, q, s3err.NotImplemented.WithMessage("s3seal policy mode %s has no decision for %s; refused.", q.rule.Mode, q.req.Op))
		return
	}
	a.serve(h, w, rt, q)
}

// passCopy copies into a passthrough location: a source s3seal encrypted
// (envelope) is decrypted on the way, anything else is a server-side copy.
func (h *Handler) passCopy(w *responseWriter, rt *Runtime, q *request) {
	if h.copyOutOfEnvelope(w, rt, q, nil) {
		return
	}
	h.forward(w, q, q.auth)
}

// passPartCopy copies a byte range of a source into a part of an upload in
// a passthrough location. A source under an envelope rule would be copied
// as ciphertext, so it is refused.
func (h *Handler) passPartCopy(w *responseWriter, rt *Runtime, q *request) {
	if src := q.dec.SourceRule; src != nil && src.Mode == policy.Envelope {
		h.fail(w, q, s3err.NotImplemented.WithMessage("The copy source is under s3seal policy rule %q (envelope): UploadPartCopy would copy its ciphertext into a location where s3seal does not decrypt it. Copy it with CopyObject (s3seal decrypts) or download and upload it.", src.Name))
		return
	}
	h.forward(w, q, q.auth)
}

// serveListBuckets answers ListBuckets, filtered to the buckets the client
// may use.
func (h *Handler) serveListBuckets(w *responseWriter, _ *Runtime, q *request) {
	if len(q.identity.Buckets) == 0 {
		h.forward(w, q, q.auth)
		return
	}
	h.forwardWith(w, q, q.auth, hooks{response: h.filterBuckets})
}

// serveListing answers a listing. Listings are decided per bucket, not per
// key: where envelope rules govern some of the bucket's keys, sizes and
// ETags are rewritten to what clients see (envList); where server-side
// encryption rules map ETags, those are (sseList); keys no client may see
// are filtered out (authz.Decision.Filter) in every case.
func (h *Handler) serveListing(w *responseWriter, rt *Runtime, q *request) {
	if q.req.Op != s3.OpListMultipartUploads {
		switch {
		case envelopeIn(rt.Policy, q.req.Bucket):
			if rt.Keys == nil {
				h.fail(w, q, errNoKeys)
				return
			}
			h.envList(w, rt, q)
			return
		case sseETagsIn(rt.Policy, q.req.Bucket):
			h.sseList(w, rt, q)
			return
		}
	}
	if q.dec.Filter == nil {
		h.forward(w, q, q.auth)
		return
	}
	h.filteredListing(w, q)
}

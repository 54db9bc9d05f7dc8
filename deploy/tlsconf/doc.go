// Package tlsconf is s3seal's TLS front door: it decides which certificate
// every handshake gets and which protocol versions, cipher suites and client
// certificates are acceptable.
//
// A [Manager] is built once with [New] from [Options], started with
// [Manager.Start] and stopped with [Manager.Close]. The server asks it for a
// [*tls.Config] ([Manager.TLSConfig]), wraps its plain-HTTP handler with
// [Manager.HTTPChallengeHandler], and reports [Manager.Ready] on /readyz and
// [Manager.NotAfter] as a metric.
//
// # Modes
//
//   - [ModeSelfSigned] (the default): an ECDSA P-256 certificate for
//     localhost, 127.0.0.1, ::1 and [Options.Names], valid for one year. It is
//     generated once, stored under [Options.DataDir]/tls (key file mode 0600)
//     and reused by every later start, so clients can pin or trust it; its
//     SHA-256 fingerprint and path are logged. It is regenerated when it
//     expires (or within a day of expiry) or when the configured names change.
//   - [ModeFiles]: a certificate chain and key read from PEM files. The files
//     are polled every [Options.ReloadInterval] (contents hashed, so both
//     symlink swaps as done by Kubernetes secret volumes and cert-manager and
//     in-place rewrites as done by certbot are seen). A good new pair replaces
//     the served one atomically; handshakes in flight are unaffected. A bad
//     pair (garbage, a key that does not match, an expired certificate) is
//     refused: the last good pair keeps being served and an error says so. A
//     warning is logged as expiry approaches.
//   - [ModeACME]: certificates from any ACME CA (Let's Encrypt by default) via
//     certmagic, with the HTTP-01 and TLS-ALPN-01 challenges, background
//     renewal and OCSP stapling as certmagic does it. Certificates, account
//     keys and locks live in [Options.Storage]; replicas that share it (see
//     [NewS3Storage]) obtain each certificate once and all serve it.
//   - [ModeOff]: no TLS at all. [Manager.TLSConfig] returns nil; the server is
//     then responsible for listening on loopback only.
//
// # Protocol policy
//
// TLS 1.2 is the minimum ([Options.MinVersion] may raise it to TLS 1.3 and
// may not lower it). TLS 1.2 connections are limited to ECDHE key exchange
// with AEAD ciphers (AES-GCM and ChaCha20-Poly1305): no CBC suites and no RSA
// key exchange. ALPN offers "h2" and "http/1.1", plus "acme-tls/1" while the
// TLS-ALPN-01 challenge is enabled. With [Options.ClientCAFile], client
// certificates are verified against those CAs: "request" verifies a
// certificate when one is presented and "require" refuses handshakes without
// a valid one (ACME TLS-ALPN-01 validation handshakes are exempt, since the
// CA cannot present a client certificate).
//
// # Replicas
//
// certmagic coordinates replicas through the Storage they share: an obtain or
// a renewal takes a lock named after the domain, and re-checks storage after
// acquiring it, so only one replica talks to the CA. A replica whose cached
// certificate enters the renewal window first looks in storage and simply
// loads a certificate another replica already renewed. Because certmagic only
// looks at storage when its own copy is due for renewal, the Manager also
// compares the stored certificate with the served one every
// [ACMEOptions.SyncInterval], so a renewal forced by one replica (see
// [Manager.RenewNow], e.g. after a key compromise) reaches all of them within
// that interval. ACME challenges are solved in a distributed way: the replica
// that places an order writes the challenge to storage, and whichever replica
// the CA's validation request reaches answers it.
//
// # Wildcard certificates and DNS-01
//
// ACME CAs issue wildcard certificates (such as *.s3.example.com, needed for
// virtual-hosted-style bucket names) only through the DNS-01 challenge, which
// proves control of the zone by publishing a TXT record. s3seal does not ship
// DNS provider integrations; for wildcards, either obtain the certificate
// outside s3seal (cert-manager with a DNS-01 issuer, certbot with a DNS
// plugin, lego) and serve it in [ModeFiles], which reloads it on renewal, or
// use [ACMEOptions.OnDemand] so that each bucket host name gets its own
// certificate by HTTP-01 or TLS-ALPN-01 the first time a client connects,
// limited to the names [ACMEOptions.OnDemandAllow] accepts.
//
// # Errors
//
// Errors are prefixed "tlsconf:". Problems with a certificate or key file are
// reported as [*FileError] naming the file, wrapping [ErrExpired] or
// [ErrKeyMismatch] where those apply. [Manager.Ready] reports a missing
// certificate as [*NotReadyError], which carries the ACME error when an order
// failed. No error or log line contains key material.
package tlsconf

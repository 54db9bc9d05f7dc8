// Command s3seal-localkms serves the AWS KMS API of local-kms on a loopback
// address only, for s3seal's integration tests.
//
// local-kms's own binary listens on every interface. This wrapper opens the
// key database itself and serves local-kms's request handler on the one
// address given with -addr, which must be a loopback address. It prints
//
//	s3seal-localkms: listening on http://127.0.0.1:PORT
//
// on standard output once the listener is open, and closes the database on
// SIGTERM or SIGINT so that a restart on the same -data directory finds every
// key created before.
//
// Usage:
//
//	s3seal-localkms -addr 127.0.0.1:0 -data DIR [-region us-east-1] [-account 111122223333]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	localkms "github.com/nsmithuk/local-kms/src"
	"github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "s3seal-localkms:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("s3seal-localkms", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback `host:port` to listen on (port 0 picks a free one)")
	dir := fs.String("data", "", "`directory` of the key database (required; created if missing)")
	region := fs.String("region", "us-east-1", "AWS `region` that key ARNs name")
	account := fs.String("account", "111122223333", "AWS `account` ID that key ARNs name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *dir == "" {
		return errors.New("-data is required")
	}
	if err := checkLoopback(*addr); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}

	// local-kms keeps its settings in package variables; this process
	// serves one database, so setting them once here is all it needs.
	config.AWSRegion = *region
	config.AWSAccountId = *account
	config.DatabasePath = abs

	db, err := openDatabase(abs)
	if err != nil {
		return err
	}
	defer db.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			localkms.HandleRequest(w, r, db)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Printf("s3seal-localkms: listening on http://%s (data %s, region %s)\n", ln.Addr(), abs, *region)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	fmt.Println("s3seal-localkms: stopped")
	return nil
}

// checkLoopback refuses any listen address that is not a literal loopback
// IP or "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: only loopback addresses are served", addr)
	}
	return nil
}

// openDatabase turns local-kms's panic on an unusable database (for example
// one locked by another process) into an error.
func openDatabase(path string) (db *data.Database, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("open key database %s: %v", path, r)
		}
	}()
	return data.NewDatabase(path), nil
}

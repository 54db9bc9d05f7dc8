package proxy

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ServerOptions configures a Server.
type ServerOptions struct {
	// Listen is the S3 listener's address; TLS its TLS configuration
	// (nil serves plain HTTP, which configuration allows on loopback
	// only).
	Listen string
	TLS    *tls.Config
	// Handler serves the S3 API.
	Handler http.Handler
	// AdminListen serves /healthz, /readyz and Admin's extra routes.
	AdminListen string
	// Admin adds routes to the admin listener (metrics, pprof); may be nil.
	Admin map[string]http.Handler
	// HTTPListen is an optional plain-HTTP listener (ACME HTTP-01 and
	// redirects) served by HTTPHandler.
	HTTPListen  string
	HTTPHandler http.Handler
	// Ready reports whether s3seal can serve (a certificate is loaded);
	// nil means always ready.
	Ready func() error
	// Probe checks upstream reachability for /readyz's body. It never
	// makes s3seal unready: an upstream blip must not empty a load
	// balancer.
	Probe func(context.Context) error

	ReadHeaderTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                 int
	Logger                         *zap.Logger
	// ErrorLog receives net/http's own messages (TLS handshake errors);
	// nil routes them to Logger at debug level.
	Now func() time.Time
}

// Server runs s3seal's listeners.
type Server struct {
	o       ServerOptions
	s3      *http.Server
	admin   *http.Server
	plain   *http.Server
	lns     []net.Listener
	s3Addr  net.Addr
	admAddr net.Addr
	errc    chan error
	wg      sync.WaitGroup

	probeMu   sync.Mutex // protects probeAt, probeErr
	probeAt   time.Time
	probeErr  error
	startedAt time.Time
}

// NewServer returns a Server; Start binds and serves.
func NewServer(o ServerOptions) (*Server, error) {
	if o.Handler == nil {
		return nil, errors.New("proxy: server needs a handler")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, errc: make(chan error, 3)}
	errLog, _ := zap.NewStdLogAt(o.Logger.Named("http"), zap.DebugLevel)
	s.s3 = &http.Server{
		Handler:           o.Handler,
		TLSConfig:         o.TLS,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          errLog,
		// The handler closes a connection whose client stopped reading
		// (responseWriter.Write); it finds the connection here.
		ConnContext: WithConn,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	for p, h := range o.Admin {
		mux.Handle(p, h)
	}
	s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	if o.HTTPListen != "" && o.HTTPHandler != nil {
		s.plain = &http.Server{Handler: o.HTTPHandler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	}
	return s, nil
}

// Start binds every listener, so a busy port is an error here, and serves in
// the background.
func (s *Server) Start() error {
	s.startedAt = s.o.Now()
	ln, err := net.Listen("tcp", s.o.Listen)
	if err != nil {
		return fmt.Errorf("proxy: listen %s: %w", s.o.Listen, err)
	}
	s.s3Addr = ln.Addr()
	adm, err := net.Listen("tcp", s.o.AdminListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("proxy: admin listen %s: %w", s.o.AdminListen, err)
	}
	s.admAddr = adm.Addr()
	s.lns = append(s.lns, ln, adm)
	var pl net.Listener
	if s.plain != nil {
		if pl, err = net.Listen("tcp", s.o.HTTPListen); err != nil {
			ln.Close()
			adm.Close()
			return fmt.Errorf("proxy: http listen %s: %w", s.o.HTTPListen, err)
		}
		s.lns = append(s.lns, pl)
	}
	serve := func(srv *http.Server, l net.Listener, tlsOn bool) {
		defer s.wg.Done()
		var err error
		if tlsOn {
			err = srv.Serve(tls.NewListener(l, srv.TLSConfig))
		} else {
			err = srv.Serve(l)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- err
		}
	}
	s.wg.Add(2)
	go serve(s.s3, ln, s.o.TLS != nil)
	go serve(s.admin, adm, false)
	if pl != nil {
		s.wg.Add(1)
		go serve(s.plain, pl, false)
	}
	return nil
}

// Addr is the S3 listener's bound address.
func (s *Server) Addr() net.Addr { return s.s3Addr }

// AdminAddr is the admin listener's bound address.
func (s *Server) AdminAddr() net.Addr { return s.admAddr }

// Errors delivers a listener's fatal error.
func (s *Server) Errors() <-chan error { return s.errc }

// Shutdown stops accepting, waits for requests in flight until ctx ends,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range []*http.Server{s.s3, s.plain, s.admin} {
		if srv == nil {
			continue
		}
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			_ = srv.Close()
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

type readiness struct {
	Ready    bool   `json:"ready"`
	TLS      string `json:"tls"`
	Upstream string `json:"upstream"`
	Uptime   string `json:"uptime"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	out := readiness{Ready: true, TLS: "ok", Upstream: "unknown"}
	if s.o.Ready != nil {
		if err := s.o.Ready(); err != nil {
			out.Ready = false
			out.TLS = err.Error()
		}
	}
	if s.o.Probe != nil {
		if err := s.probe(r.Context()); err != nil {
			out.Upstream = "unreachable: " + err.Error()
		} else {
			out.Upstream = "reachable"
		}
	}
	out.Uptime = s.o.Now().Sub(s.startedAt).Round(time.Second).String()
	w.Header().Set("Content-Type", "application/json")
	if !out.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(out)
}

// probe runs the upstream probe at most every five seconds.
func (s *Server) probe(ctx context.Context) error {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if !s.probeAt.IsZero() && s.o.Now().Sub(s.probeAt) < 5*time.Second {
		return s.probeErr
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s.probeErr = s.o.Probe(ctx)
	s.probeAt = s.o.Now()
	return s.probeErr
}

package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tollgate/tollgate/ratelimit"
)

// instanceName identifies this process in security logs.
func instanceName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// instanceID names this process in the heartbeat: unique even for two
// processes of one name (containers that all run as pid 1).
func instanceID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return instanceName() + ":" + hex.EncodeToString(b)
}

// Heartbeat announces this instance in Redis every second until ctx ends,
// keeping the count of instances that share the limits and the breaker's
// state current whatever the traffic (Run starts it; without Redis it
// returns at once).
func (s *Server) Heartbeat(ctx context.Context) {
	if fb, ok := s.Stores.Limits.(*ratelimit.Fallback); ok && s.Stores.Shared != nil {
		fb.Heartbeat(ctx, s.Stores.Shared, instanceID(), time.Second, s.deps.Config.RateLimitRedisTimeout)
	}
}

// FollowEndedSessions keeps this instance's copy of the ended sessions
// current from Redis until ctx ends (Run starts it).
func (s *Server) FollowEndedSessions(ctx context.Context) { s.Stores.Ended.Run(ctx) }

// MetricsHandler serves the Prometheus exposition of this app's registry.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})
}

// Listen opens the API's listener on addr (Run serves on it); the caller
// learns the real address (PORT=0) before building the server.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Run serves on ln until ctx is cancelled, then shuts down in three steps:
// /readyz turns 503 while the server keeps serving for SHUTDOWN_DRAIN_DELAY
// (load balancers notice and stop sending), then the listener closes and
// in-flight requests get up to SHUTDOWN_TIMEOUT to finish. With
// METRICS_ADDR set, /metrics is served on that second listener meanwhile;
// with PURGE_INTERVAL, stale tokens and accounts are deleted periodically.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	cfg, log := s.deps.Config, s.deps.Log
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	go func() {
		select {
		case <-ctx.Done():
		case <-serveCtx.Done():
			return
		}
		s.Services.Health.Drain()
		log.Info("shutdown started: /readyz answers 503, still serving during the drain delay", "drain_delay", cfg.ShutdownDrainDelay)
		select {
		case <-time.After(cfg.ShutdownDrainDelay):
		case <-serveCtx.Done():
		}
		log.Info("shutdown: closing the listener, finishing in-flight requests", "timeout", cfg.ShutdownTimeout)
		stopServing()
	}()
	if cfg.MetricsAddr != "" {
		ms := echo.StartConfig{Address: cfg.MetricsAddr, HideBanner: true, HidePort: true, GracefulTimeout: time.Second,
			ListenerAddrFunc: func(a net.Addr) { log.Info("metrics listening", "address", a.String(), "path", "/metrics") }}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.MetricsHandler())
		go func() {
			if err := ms.Start(serveCtx, mux); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener failed", "error", err)
			}
		}()
	}
	if cfg.PurgeInterval > 0 {
		go s.Services.Purge.Every(serveCtx, cfg.PurgeInterval)
	}
	go s.Heartbeat(serveCtx)
	go s.FollowEndedSessions(serveCtx)
	go s.Services.IPRules.Run(serveCtx)
	go s.Services.Webhooks.Run(serveCtx, cfg.WebhookPollInterval)
	// Queued mail is delivered in the background, with retries.
	go s.Services.Outbox.Run(serveCtx, cfg.MailPollInterval)
	// API key last-use times are batched in memory and written each minute.
	flushed := make(chan struct{})
	go func() { s.Services.APIKeys.Every(serveCtx, time.Minute); close(flushed) }()
	// Signed checkpoints of the audit chain go to the log, the last one at
	// shutdown (before the database closes).
	checkpointed := make(chan struct{})
	go func() {
		if cfg.AuditCheckpointInterval > 0 {
			s.Services.Audit.Checkpoints(serveCtx, cfg.AuditCheckpointInterval)
		}
		close(checkpointed)
	}()
	defer func() { stopServing(); <-flushed; <-checkpointed }()
	sc := echo.StartConfig{
		Listener:        jsonErrorsListener{ln},
		HideBanner:      true,
		HidePort:        true,
		GracefulTimeout: cfg.ShutdownTimeout,
		ListenerAddrFunc: func(a net.Addr) {
			log.Info("listening", "address", a.String(), "env", cfg.AppEnv)
		},
		BeforeServeFunc: func(hs *http.Server) error {
			// Slow or idle clients cannot hold connections open forever.
			hs.ReadHeaderTimeout = cfg.HTTPReadHeaderTimeout
			hs.ReadTimeout = cfg.HTTPReadTimeout
			hs.WriteTimeout = cfg.HTTPWriteTimeout
			hs.IdleTimeout = cfg.HTTPIdleTimeout
			hs.MaxHeaderBytes = cfg.HTTPMaxHeaderBytes
			return nil
		},
	}
	err := sc.Start(serveCtx, s.handler)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err == nil {
		log.Info("shutdown complete")
	}
	return err
}

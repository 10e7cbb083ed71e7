// Package server builds the gRPC server every bcx service runs in: the same
// interceptor chain for every RPC (errors and panics outermost, then
// authentication and authorization), gRPC health and server reflection, and
// a staged shutdown.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	"github.com/bcx-exchange/bcx/pkg/auth"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
)

// Server is a gRPC server with health and reflection.
type Server struct {
	GRPC   *grpc.Server
	Health *health.Server
	logger *slog.Logger
}

// InfraPolicy lists the methods open without a token: health checks (load
// balancers and orchestrators probe them) and reflection (it describes the
// public API, nothing more).
func InfraPolicy() auth.Policy {
	p := auth.Policy{
		"/grpc.health.v1.Health/Check": auth.Public,
		"/grpc.health.v1.Health/Watch": auth.Public,
		"/grpc.health.v1.Health/List":  auth.Public,
	}
	for _, svc := range []string{reflectionv1.ServerReflection_ServiceDesc.ServiceName, reflectionv1alpha.ServerReflection_ServiceDesc.ServiceName} {
		p["/"+svc+"/ServerReflectionInfo"] = auth.Public
	}
	return p
}

// New returns a server whose every RPC passes through the error and auth
// interceptors. policy must cover every method registered later; a method it
// does not list is refused.
func New(logger *slog.Logger, verifier auth.Verifier, policy auth.Policy) *Server {
	policy = policy.Merge(InfraPolicy())
	g := grpc.NewServer(
		grpc.ChainUnaryInterceptor(rpcerr.UnaryInterceptor(logger), auth.UnaryInterceptor(verifier, policy)),
		grpc.ChainStreamInterceptor(rpcerr.StreamInterceptor(logger), auth.StreamInterceptor(verifier, policy)),
		grpc.MaxRecvMsgSize(16<<20), // statements can be large; bounded all the same
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	h := health.NewServer()
	healthpb.RegisterHealthServer(g, h)
	reflection.Register(g)
	return &Server{GRPC: g, Health: h, logger: logger}
}

// Serve serves on lis until ctx is done, then shuts down in stages: health
// reports NOT_SERVING so balancers stop sending, in-flight calls drain, and
// after drainTimeout the rest are cut.
func (s *Server) Serve(ctx context.Context, lis net.Listener, drainTimeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.GRPC.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.Health.Shutdown()
	done := make(chan struct{})
	go func() { s.GRPC.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
		s.logger.Warn("drain timed out; stopping", "timeout", drainTimeout)
		s.GRPC.Stop()
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

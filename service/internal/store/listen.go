package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// CacheChannel is the channel migration 0004's triggers notify on every
// change to users and user_permissions.
const CacheChannel = "nova_auth_cache"

// Subscriber receives what a LISTEN connection hears.
type Subscriber interface {
	// Subscribed is called once LISTEN is in effect on a new connection:
	// every commit from now on is notified.
	Subscribed()
	// Notify is called with each notification's payload, in commit order.
	Notify(payload string)
	// Lost is called when the connection is gone or could not be made:
	// notifications may be missed until the next Subscribed.
	Lost(err error)
}

// ListenOptions tunes the LISTEN connection.
type ListenOptions struct {
	// Ping is how long the connection may stay silent before a query
	// checks that it is still alive: a network that drops packets without
	// closing the socket is found within Ping plus PingTimeout.
	Ping        time.Duration
	PingTimeout time.Duration
	// Retry is the pause between connection attempts.
	Retry time.Duration
}

// Listen holds one connection of its own (outside the pool, so a busy pool
// never starves it) that LISTENs on channel, and reconnects when it is lost,
// until ctx ends; then it calls sub.Lost with ctx's error, since nothing is
// heard any more.
func (s *Store) Listen(ctx context.Context, channel string, sub Subscriber, o ListenOptions) {
	defer func() { sub.Lost(ctx.Err()) }()
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "nova-auth-listen"
	// A ping that times out must not cost a cancel request, and the
	// connection must survive the deadline that ends a wait.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, cfg, channel, sub, o)
		if ctx.Err() != nil {
			return
		}
		sub.Lost(classify(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(o.Retry):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, channel string, sub Subscriber, o ListenOptions) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	sub.Subscribed()
	for {
		wctx, cancel := context.WithTimeout(ctx, o.Ping)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			sub.Notify(n.Payload)
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded) && !pgconn.Timeout(err):
			return err
		}
		// Silent for Ping: make sure the server is still there.
		pctx, cancel := context.WithTimeout(ctx, o.PingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return err
		}
	}
}

package main

import (
	"context"
	"fmt"

	"github.com/nova-auth/nova-auth/internal/tokens"
	"github.com/nova-auth/nova-auth/service/internal/config"
	"github.com/nova-auth/nova-auth/service/internal/store"
)

// tokensCmd issues a token for a user, signed with JWT_PRIVATE_KEY. (Not
// named tokens: that is the package it signs with.)
func tokensCmd(ctx context.Context, args []string, s stdio) error {
	fs, args, err := s.subcommand(args, "tokens issue --user ID [--ttl 15m]")
	if err != nil {
		return err
	}
	user := fs.String("user", "", "user id (the token's sub)")
	ttl := fs.Duration("ttl", 0, "lifetime (default JWT_ACCESS_TOKEN_TTL, at most JWT_MAX_TTL)")
	id, err := parseForUser(fs, args, user)
	if err != nil {
		return err
	}
	return withStore(ctx, func(cfg *config.Config, st *store.Store) error {
		if *ttl == 0 {
			*ttl = cfg.JWTTokenTTL
		}
		if *ttl < 0 {
			return usageError{"--ttl must be positive"}
		}
		if *ttl > cfg.JWTMaxTTL {
			return usageError{fmt.Sprintf("--ttl %s exceeds JWT_MAX_TTL=%s: VerifyToken would refuse the token", *ttl, cfg.JWTMaxTTL)}
		}
		privPEM, err := cfg.PrivateKeyPEM()
		if err != nil {
			return err
		}
		key, err := tokens.ParsePrivateKey(privPEM)
		if err != nil {
			return fmt.Errorf("JWT_PRIVATE_KEY: %w", err)
		}
		u, err := st.GetUser(ctx, id)
		if err != nil {
			return userErr(err, id)
		}
		signer, err := tokens.NewSigner(key, cfg.JWTIssuer, cfg.JWTAudience)
		if err != nil {
			return err
		}
		tok, _, err := signer.Issue(u.ID.String(), u.Email, *ttl)
		if err != nil {
			return err
		}
		fmt.Fprintln(s.out, tok)
		return nil
	})
}

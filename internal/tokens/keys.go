// Package tokens loads signing keys and verifies (and issues) the JWTs the
// platform uses, with an algorithm allow-list fixed by the key types.
package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
)

// algorithmFor is the one JWT algorithm each key type is used with, so a key
// can never be used with an algorithm its owner did not intend (an RSA
// public key is never an HMAC secret).
func algorithmFor(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA key of %d bits: at least 2048 are required", k.N.BitLen())
		}
		return "RS256", nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", errors.New("ECDSA key is not on P-256: ES256 needs P-256")
		}
		return "ES256", nil
	case ed25519.PublicKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("unsupported key type %T: use RSA (RS256), ECDSA P-256 (ES256) or Ed25519 (EdDSA)", pub)
}

// KeyID is the key's id in a token's `kid` header: the unpadded base64url
// SHA-256 of its DER SubjectPublicKeyInfo, so it is derived, never configured.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:16]), nil
}

// ParsePublicKeys reads every public key in a PEM bundle ("PUBLIC KEY",
// "RSA PUBLIC KEY" or "CERTIFICATE" blocks). A private key block is accepted
// too and its public half used, so one secret can serve both roles.
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var (
			pub crypto.PublicKey
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			var priv crypto.Signer
			if priv, err = parsePrivateBlock(block); err == nil {
				pub = priv.Public()
			}
		default:
			err = fmt.Errorf("PEM block type %q is not a key", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", n, err)
		}
		if _, err := algorithmFor(pub); err != nil {
			return nil, fmt.Errorf("key %d: %w", n, err)
		}
		out = append(out, pub)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM key found: expected -----BEGIN PUBLIC KEY----- blocks")
	}
	return out, nil
}

// ParsePrivateKey reads one private key (PKCS#8, PKCS#1 RSA or SEC 1 EC).
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found: expected -----BEGIN PRIVATE KEY-----")
	}
	k, err := parsePrivateBlock(block)
	if err != nil {
		return nil, err
	}
	if _, err := algorithmFor(k.Public()); err != nil {
		return nil, err
	}
	return k, nil
}

func parsePrivateBlock(block *pem.Block) (crypto.Signer, error) {
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("PRIVATE KEY block is not valid PKCS#8")
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
		return s, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("RSA PRIVATE KEY block is not valid PKCS#1")
		}
		return k, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("EC PRIVATE KEY block is not valid SEC 1")
		}
		return k, nil
	}
	return nil, fmt.Errorf("PEM block type %q is not a private key", block.Type)
}

// GenerateEd25519PEM makes a new Ed25519 key pair as PKCS#8 / PKIX PEM, for
// `make run` and tests.
func GenerateEd25519PEM() (privPEM, pubPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, nil, err
	}
	return MarshalPEM(priv, pub)
}

// MarshalPEM encodes a key pair as PKCS#8 and PKIX PEM.
func MarshalPEM(priv crypto.Signer, pub crypto.PublicKey) (privPEM, pubPEM []byte, err error) {
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), nil
}

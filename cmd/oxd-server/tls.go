package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/oxdgo/oxd/internal/devcert"
)

// loadOrGenerateCert loads -tls-cert/-tls-key, or generates a self-signed
// certificate (internal/devcert: ECDSA P-256, valid for
// devcert.DefaultValidity from this start, for 127.0.0.1, ::1, localhost
// and the host of -https-listen). Either way it logs the SHA-256
// fingerprint of the leaf.
func loadOrGenerateCert(o *options, log *slog.Logger) (tls.Certificate, error) {
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("TLS certificate: %w", err)
		}
		log.Info("TLS certificate loaded", "file", o.tlsCert, "sha256", devcert.Fingerprint(cert.Certificate[0]))
		return cert, nil
	}
	var hosts []string
	if host, _, err := net.SplitHostPort(o.httpsListen); err == nil {
		hosts = append(hosts, host)
	}
	cert, err := devcert.Generate(devcert.Options{CommonName: "oxd-server (self-signed)"}, hosts...)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS certificate: %w", err)
	}
	if o.tlsCertOut != "" {
		if err := os.WriteFile(o.tlsCertOut, cert.PEM(), 0o644); err != nil {
			return tls.Certificate{}, fmt.Errorf("TLS certificate: %w", err)
		}
	}
	attrs := []any{"sha256", cert.Fingerprint(), "hosts", cert.Hosts(), "not_after", cert.Leaf.NotAfter}
	if o.tlsCertOut != "" {
		attrs = append(attrs, "written_to", o.tlsCertOut)
	}
	log.Info("TLS certificate generated (self-signed, ECDSA P-256)", attrs...)
	return cert.TLS, nil
}

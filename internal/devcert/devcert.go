// Package devcert makes the self-signed certificates of the development
// TLS listeners (cmd/oxd-server without -tls-cert, the examples): one
// ECDSA P-256 key held in memory, a random 127-bit serial number, a short
// validity, names for the loopback addresses, and the SHA-256 fingerprint
// a user compares with what the browser or client shows.
package devcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/oxdgo/oxd/internal/hostutil"
)

// DefaultValidity is how long a generated certificate is valid (it is
// made afresh on every start).
const DefaultValidity = 30 * 24 * time.Hour

// backdate absorbs clock skew between the listener and its clients.
const backdate = time.Hour

// Options are the optional settings of Generate.
type Options struct {
	// CommonName is the subject's common name, shown by browsers.
	// Default "oxd development (self-signed)".
	CommonName string
	// Validity defaults to DefaultValidity.
	Validity time.Duration
	// Now is the time of issue; default time.Now (set by tests).
	Now time.Time
}

// Cert is a generated certificate.
type Cert struct {
	// TLS is the certificate for tls.Config.Certificates (Leaf set).
	TLS tls.Certificate
	// Leaf is the parsed certificate.
	Leaf *x509.Certificate
}

// PEM is the certificate (not the key) in PEM form, for a client's trust
// store.
func (c *Cert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Leaf.Raw})
}

// Fingerprint is the certificate's SHA-256 fingerprint (see Fingerprint).
func (c *Cert) Fingerprint() string { return Fingerprint(c.Leaf.Raw) }

// Generate makes a self-signed certificate for 127.0.0.1, ::1, localhost
// and the given hosts: IP literals (brackets allowed) or DNS names, without
// port; anything else is an error; empty strings, duplicates and the
// unspecified addresses 0.0.0.0 and :: are skipped. It is a CA certificate
// limited to itself (path length 0, and critical name constraints that
// permit only its own names and addresses, so a certificate signed with
// its key for any other host is refused by a client that trusts it) so
// that OpenSSL-based clients (Node.js, curl) accept it as its own trust
// anchor, as Go clients do.
func Generate(opts Options, hosts ...string) (*Cert, error) {
	if opts.CommonName == "" {
		opts.CommonName = "oxd development (self-signed)"
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultValidity
	}
	if opts.Validity < 0 {
		return nil, errors.New("devcert: negative validity")
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devcert: generating the key: %w", err)
	}
	// A positive serial of at most 127 bits: random (RFC 5280 §4.1.2.2
	// allows 20 octets), so two certificates never share one.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("devcert: generating the serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: opts.CommonName},
		NotBefore:             opts.Now.Add(-backdate),
		NotAfter:              opts.Now.Add(opts.Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback},
	}
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() && !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
			continue
		}
		h = strings.ToLower(h)
		if !hostutil.IsDNSName(h) {
			return nil, fmt.Errorf("devcert: %q is neither an IP address nor a DNS name", h)
		}
		if !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	// The certificate is a CA (see above): its name constraints limit
	// what it could vouch for to its own names and addresses, so that a
	// user who trusts it trusts nothing else, whoever gets the key.
	tmpl.PermittedDNSDomainsCritical = true
	tmpl.PermittedDNSDomains = slices.Clone(tmpl.DNSNames)
	for _, ip := range tmpl.IPAddresses {
		if v4 := ip.To4(); v4 != nil {
			ip = v4 // a 16-byte IPv4 would make an IPv6 constraint
		}
		bits := 8 * len(ip)
		tmpl.PermittedIPRanges = append(tmpl.PermittedIPRanges, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("devcert: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("devcert: %w", err)
	}
	return &Cert{TLS: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, Leaf: leaf}, nil
}

// Hosts lists the names and addresses the certificate is valid for,
// comma-separated (for a log line).
func (c *Cert) Hosts() string {
	s := append([]string(nil), c.Leaf.DNSNames...)
	for _, ip := range c.Leaf.IPAddresses {
		s = append(s, ip.String())
	}
	return strings.Join(s, ",")
}

// Fingerprint is the SHA-256 of a DER certificate as colon-separated
// upper-case hex, the form browsers and `openssl x509 -fingerprint
// -sha256` show.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	b.Grow(len(h) + len(h)/2)
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

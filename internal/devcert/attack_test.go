package devcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// TestCannotVouchForOtherHosts: the development certificate is a CA (path
// length 0), and a client that trusts it must not accept a certificate
// signed with its key for another host or address: its name constraints
// allow only its own names. It still verifies as itself, for its own
// names, and for a leaf of its own names.
func TestCannotVouchForOtherHosts(t *testing.T) {
	c, err := Generate(Options{}, "dev.example", "192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.Leaf)
	issue := func(dns []string, ips []net.IP) *x509.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "x"},
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			DNSNames: dns, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Leaf, &k.PublicKey, c.TLS.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := x509.ParseCertificate(der)
		return l
	}
	verify := func(l *x509.Certificate, name string) error {
		_, err := l.Verify(x509.VerifyOptions{Roots: roots, DNSName: name})
		return err
	}
	for _, forged := range []struct {
		dns  []string
		ips  []net.IP
		name string
	}{
		{[]string{"bank.example"}, nil, "bank.example"},
		{[]string{"localhost", "bank.example"}, nil, "localhost"},
		{nil, []net.IP{net.ParseIP("203.0.113.9")}, "203.0.113.9"},
		{[]string{"example"}, nil, "example"},
	} {
		if err := verify(issue(forged.dns, forged.ips), forged.name); err == nil {
			t.Errorf("a certificate for %v %v signed with the development key was accepted", forged.dns, forged.ips)
		}
	}
	for _, name := range []string{"localhost", "dev.example", "127.0.0.1", "::1", "192.0.2.7"} {
		if err := verify(c.Leaf, name); err != nil {
			t.Errorf("the certificate itself for %s: %v", name, err)
		}
	}
	for _, name := range []string{"dev.example", "192.0.2.7", "127.0.0.1", "::1"} {
		l := issue([]string{"dev.example"}, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("192.0.2.7"), net.IPv6loopback})
		if err := verify(l, name); err != nil {
			t.Errorf("a leaf within the constraints, for %s: %v", name, err)
		}
	}
}

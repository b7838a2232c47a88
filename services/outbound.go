package services

import (
	"net"
	"net/http"
	"syscall"
	"time"
)

// guardedClient is an HTTP client for URLs that someone other than the
// operator chose (an org's IdP, an admin's webhook endpoint): unless
// allowPrivate, it refuses loopback, private, link-local and CGNAT
// addresses at connect time, after DNS, so a name that resolves inward
// (or a redirect there) is refused too. Connections are pooled.
func guardedClient(allowPrivate bool, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); allowPrivate || (ip != nil && publicIP(ip)) {
			return nil
		}
		return errPrivateAddress
	}}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second}}
}

func publicIP(ip net.IP) bool {
	cgnat := &net.IPNet{IP: net.IPv4(100, 64, 0, 0), Mask: net.CIDRMask(10, 32)}
	inward := ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() ||
		ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || cgnat.Contains(ip)
	return !inward
}

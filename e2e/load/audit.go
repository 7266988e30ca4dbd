package load

import (
	"fmt"
	"os"
	"strings"
)

// auditWindow is how many characters of a secret are enough to count as a
// leak: any 12 consecutive characters at the start of a secret.
const auditWindow = minSecretLen

// Leak is a secret found in a log.
type Leak struct {
	File string
	Line int
	// Kind describes the secret without showing it: its length and first
	// four characters.
	Kind string
}

// AuditLogs looks for every secret (its first auditWindow characters,
// anywhere in a line) in every line of the files. It returns the leaks, the
// number of lines read and an error for a file that cannot be read.
func AuditLogs(secrets []string, files []string) (leaks []Leak, lines int, err error) {
	prefix := make(map[string]string, len(secrets))
	for _, s := range secrets {
		if len(s) >= auditWindow {
			prefix[s[:auditWindow]] = s
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return leaks, lines, err
		}
		for i, line := range strings.Split(string(b), "\n") {
			lines++
			for j := 0; j+auditWindow <= len(line); j++ {
				if s, ok := prefix[line[j:j+auditWindow]]; ok {
					leaks = append(leaks, Leak{File: f, Line: i + 1, Kind: fmt.Sprintf("%d-character secret starting %q", len(s), s[:4])})
					break
				}
			}
		}
	}
	return leaks, lines, nil
}

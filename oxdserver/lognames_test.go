package oxdserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdserver"
)

// TestUnknownCommandNameBoundedInLogs: an unknown command's name, chosen
// by the caller, reaches the debug log cut to 64 bytes on a character
// boundary and marked as cut.
func TestUnknownCommandNameBoundedInLogs(t *testing.T) {
	var buf bytes.Buffer
	eng, err := oxdserver.New(oxdserver.Config{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close() })
	_, err = eng.Execute(context.Background(), oxdserver.Request{Command: "a" + strings.Repeat("é", 100), Params: []byte(`{}`)})
	require.Error(t, err)
	var line struct{ Command string }
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line), buf.String())
	assert.Equal(t, "a"+strings.Repeat("é", 31)+"…", line.Command)
}

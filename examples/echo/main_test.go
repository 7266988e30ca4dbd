package main

import (
	"testing"

	"github.com/oxdgo/oxd/examples/internal/exampletest"
)

func TestEchoExample(t *testing.T) { exampletest.Check(t, newApp) }

package main

import (
	"testing"

	"github.com/oxdgo/oxd/examples/internal/exampletest"
)

func TestChiExample(t *testing.T) { exampletest.Check(t, newApp) }

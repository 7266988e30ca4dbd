package main

import (
	"testing"

	"github.com/oxdgo/oxd/examples/internal/exampletest"
)

func TestGinExample(t *testing.T) { exampletest.Check(t, newApp) }

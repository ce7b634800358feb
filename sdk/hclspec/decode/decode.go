// Package decode turns a plugin's protobuf config spec into an hcldec.Spec
// and decodes an HCL body against it, keeping real file:line:col in every
// diagnostic. The core uses it for plugin config blocks; sdktest uses it to
// check a plugin's spec the way the core will.
package decode

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Spec converts a protobuf spec to an hcldec.Spec. A nil spec is an empty
// object: the block may hold nothing. Errors mean the plugin declared an
// invalid spec; they carry no source position.
func Spec(s *pluginv1.Spec) (hcldec.Spec, error) {
	if s == nil {
		return hcldec.ObjectSpec{}, nil
	}
	return convert(s, "config")
}

func convert(s *pluginv1.Spec, path string) (hcldec.Spec, error) {
	switch n := s.GetNode().(type) {
	case *pluginv1.Spec_Object:
		obj := hcldec.ObjectSpec{}
		for name, sub := range n.Object.GetAttributes() {
			if sub == nil {
				return nil, fmt.Errorf("%s.%s: empty spec", path, name)
			}
			c, err := convert(sub, path+"."+name)
			if err != nil {
				return nil, err
			}
			obj[name] = c
		}
		return obj, nil
	case *pluginv1.Spec_Attr:
		a := n.Attr
		if a.GetName() == "" {
			return nil, fmt.Errorf("%s: attribute without a name", path)
		}
		ty, err := parseType(a.GetType())
		if err != nil {
			return nil, fmt.Errorf("%s: attribute %q: %w", path, a.GetName(), err)
		}
		return &hcldec.AttrSpec{Name: a.GetName(), Type: ty, Required: a.GetRequired()}, nil
	case *pluginv1.Spec_Block:
		b := n.Block
		nested, err := nestedSpec(b.GetNested(), path+"."+b.GetName())
		if err != nil {
			return nil, err
		}
		if b.GetName() == "" {
			return nil, fmt.Errorf("%s: block without a name", path)
		}
		return &hcldec.BlockSpec{TypeName: b.GetName(), Nested: nested, Required: b.GetRequired()}, nil
	case *pluginv1.Spec_BlockList:
		b := n.BlockList
		nested, err := nestedSpec(b.GetNested(), path+"."+b.GetName())
		if err != nil {
			return nil, err
		}
		if b.GetName() == "" {
			return nil, fmt.Errorf("%s: block list without a name", path)
		}
		return &hcldec.BlockListSpec{TypeName: b.GetName(), Nested: nested,
			MinItems: int(b.GetMinItems()), MaxItems: int(b.GetMaxItems())}, nil
	case *pluginv1.Spec_BlockSet:
		b := n.BlockSet
		nested, err := nestedSpec(b.GetNested(), path+"."+b.GetName())
		if err != nil {
			return nil, err
		}
		if b.GetName() == "" {
			return nil, fmt.Errorf("%s: block set without a name", path)
		}
		return &hcldec.BlockSetSpec{TypeName: b.GetName(), Nested: nested,
			MinItems: int(b.GetMinItems()), MaxItems: int(b.GetMaxItems())}, nil
	case *pluginv1.Spec_BlockMap:
		b := n.BlockMap
		nested, err := nestedSpec(b.GetNested(), path+"."+b.GetName())
		if err != nil {
			return nil, err
		}
		if b.GetName() == "" || len(b.GetLabels()) == 0 {
			return nil, fmt.Errorf("%s: block map needs a name and at least one label", path)
		}
		return &hcldec.BlockMapSpec{TypeName: b.GetName(), LabelNames: b.GetLabels(), Nested: nested}, nil
	case *pluginv1.Spec_Default:
		d := n.Default
		if d.GetPrimary() == nil || d.GetDefault() == nil {
			return nil, fmt.Errorf("%s: default needs a primary and a default spec", path)
		}
		p, err := convert(d.GetPrimary(), path)
		if err != nil {
			return nil, err
		}
		def, err := convert(d.GetDefault(), path)
		if err != nil {
			return nil, err
		}
		return &hcldec.DefaultSpec{Primary: p, Default: def}, nil
	case *pluginv1.Spec_Literal:
		v, err := parseLiteral(n.Literal.GetValue())
		if err != nil {
			return nil, fmt.Errorf("%s: literal: %w", path, err)
		}
		return &hcldec.LiteralSpec{Value: v}, nil
	}
	return nil, fmt.Errorf("%s: empty spec node", path)
}

// nestedSpec converts a block's body spec; nil is an empty body.
func nestedSpec(s *pluginv1.Spec, path string) (hcldec.Spec, error) {
	if s == nil {
		return hcldec.ObjectSpec{}, nil
	}
	return convert(s, path)
}

// parseType parses an HCL type expression such as "list(string)".
func parseType(expr string) (cty.Type, error) {
	if expr == "" {
		return cty.NilType, fmt.Errorf("no type")
	}
	e, diags := hclsyntax.ParseExpression([]byte(expr), "type", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("type %q: %s", expr, diags.Error())
	}
	ty, diags := typeexpr.TypeConstraint(e)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("type %q: %s", expr, diags.Error())
	}
	return ty, nil
}

// parseLiteral evaluates a constant HCL expression (no variables, no functions).
func parseLiteral(expr string) (cty.Value, error) {
	e, diags := hclsyntax.ParseExpression([]byte(expr), "literal", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("%q: %s", expr, diags.Error())
	}
	v, diags := e.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("%q is not a constant: %s", expr, diags.Error())
	}
	return v, nil
}

// Body decodes body against spec with ctx (the config's functions) and
// returns the value as a JSON object. Diagnostics point into the body's
// source. body may be nil (no config block: an empty body).
func Body(body hcl.Body, spec hcldec.Spec, ctx *hcl.EvalContext) ([]byte, hcl.Diagnostics) {
	if body == nil {
		body = hcl.EmptyBody()
	}
	val, diags := hcldec.Decode(body, spec, ctx)
	if diags.HasErrors() {
		return nil, diags
	}
	if val.IsNull() {
		return []byte("{}"), diags
	}
	if !val.IsWhollyKnown() {
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: "Unknown value in plugin config", Detail: "Every value in a config block must be known when the core starts."})
	}
	b, err := ctyjson.SimpleJSONValue{Value: val}.MarshalJSON()
	if err != nil {
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: "Plugin config not representable as JSON", Detail: err.Error()})
	}
	return b, diags
}

// Source parses src, the HCL text of a config {} block's body, and decodes
// it against spec, returning the JSON Configure receives: what the core does
// with a plugin block, for a plugin's own tests. A spec that does not
// convert is reported as a diagnostic without a position.
func Source(spec *pluginv1.Spec, src []byte, filename string, ctx *hcl.EvalContext) ([]byte, hcl.Diagnostics) {
	s, err := Spec(spec)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid config spec", Detail: err.Error()}}
	}
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	return Body(f.Body, s, ctx)
}

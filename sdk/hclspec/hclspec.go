// Package hclspec builds the schema of a plugin's config {} block: a mirror
// of HCL's hcldec specifications carried in protobuf (Nomad's hclspec idea).
// Types are HCL type expressions as strings ("string", "number", "bool",
// "list(string)", "map(number)", "any").
//
//	hclspec.Object(map[string]*pluginv1.Spec{
//		"url":     hclspec.Attr("url", "string", true, "Where to send events."),
//		"timeout": hclspec.Default(hclspec.Attr("timeout", "string", false, ""), hclspec.Literal(`"10s"`)),
//	})
//
// This package depends only on the generated protobuf types; the core (and
// sdktest) decode HCL against a spec with hclspec/decode.
package hclspec

import "github.com/wisehosting/wisehosting/sdk/proto/pluginv1"

// Object is a body with the given named attributes and blocks.
func Object(fields map[string]*pluginv1.Spec) *pluginv1.Spec {
	return &pluginv1.Spec{Node: &pluginv1.Spec_Object{Object: &pluginv1.Object{Attributes: fields}}}
}

// Attr is an attribute of the given HCL type.
func Attr(name, typ string, required bool, description string) *pluginv1.Spec {
	return &pluginv1.Spec{Node: &pluginv1.Spec_Attr{Attr: &pluginv1.Attr{
		Name: name, Type: typ, Required: required, Description: description}}}
}

// Block is a single nested block.
func Block(name string, required bool, nested *pluginv1.Spec, description string) *pluginv1.Spec {
	return &pluginv1.Spec{Node: &pluginv1.Spec_Block{Block: &pluginv1.Block{
		Name: name, Required: required, Nested: nested, Description: description}}}
}

// BlockList is a repeated nested block; maxItems 0 means no limit.
func BlockList(name string, nested *pluginv1.Spec, minItems, maxItems uint64, description string) *pluginv1.Spec {
	return &pluginv1.Spec{Node: &pluginv1.Spec_BlockList{BlockList: &pluginv1.BlockList{
		Name: name, Nested: nested, MinItems: minItems, MaxItems: maxItems, Description: description}}}
}

// BlockSet is a repeated nested block decoded to a set.
func BlockSet(name string, nested *pluginv1.Spec, minItems, maxItems uint64, description string) *pluginv1.Spec {
	return &pluginv1.Spec{Node: &pluginv1.Spec_BlockSet{BlockSet: &pluginv1.BlockSet{
		Name: name, Nested: nested, MinItems: minItems, MaxItems: maxItems, Description: description}}}
}

// BlockMap is a labelled nested block decoded to a map keyed by the labels.
func BlockMap(name string, labels []string, nested *pluginv1.Spec, description string) *pluginv1.Spec {
	return &pluginv1.Spec{Node: &pluginv1.Spec_BlockMap{BlockMap: &pluginv1.BlockMap{
		Name: name, Labels: labels, Nested: nested, Description: description}}}
}

// Default decodes primary, or def when primary is absent.
func Default(primary, def *pluginv1.Spec) *pluginv1.Spec {
	return &pluginv1.Spec{Node: &pluginv1.Spec_Default{Default: &pluginv1.Default{Primary: primary, Default: def}}}
}

// Literal is a constant HCL expression, e.g. `"web"`, `10`, `["a", "b"]`.
func Literal(expr string) *pluginv1.Spec {
	return &pluginv1.Spec{Node: &pluginv1.Spec_Literal{Literal: &pluginv1.Literal{Value: expr}}}
}

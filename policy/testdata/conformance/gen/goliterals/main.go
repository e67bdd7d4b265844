// Command goliterals prints, as JSON, the table of test cases of one Go
// test function (its composite literals), so that gen scripts can turn a
// reference implementation's own test table into vectors.
package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
)

func conv(e ast.Expr) any {
	switch x := e.(type) {
	case *ast.BasicLit:
		switch x.Kind {
		case token.STRING:
			s, _ := strconv.Unquote(x.Value)
			return s
		case token.INT:
			n, _ := strconv.Atoi(x.Value)
			return n
		}
	case *ast.Ident:
		switch x.Name {
		case "true":
			return true
		case "false":
			return false
		case "nil":
			return nil
		}
		return "$" + x.Name
	case *ast.CompositeLit:
		if len(x.Elts) > 0 {
			if _, ok := x.Elts[0].(*ast.KeyValueExpr); ok {
				m := map[string]any{}
				for _, el := range x.Elts {
					kv := el.(*ast.KeyValueExpr)
					var k string
					switch kk := kv.Key.(type) {
					case *ast.BasicLit:
						k, _ = strconv.Unquote(kk.Value)
					case *ast.Ident:
						k = kk.Name
					}
					m[k] = conv(kv.Value)
				}
				return m
			}
		}
		if _, isMap := x.Type.(*ast.MapType); isMap {
			return map[string]any{}
		}
		if sel, ok := x.Type.(*ast.SelectorExpr); ok && len(x.Elts) == 0 {
			_ = sel
			return map[string]any{}
		}
		arr := []any{}
		for _, el := range x.Elts {
			arr = append(arr, conv(el))
		}
		return arr
	case *ast.UnaryExpr:
		return conv(x.X)
	}
	return nil
}

func main() {
	fs := token.NewFileSet()
	f, err := parser.ParseFile(fs, os.Args[1], nil, 0)
	if err != nil {
		panic(err)
	}
	var out []any
	ast.Inspect(f, func(n ast.Node) bool {
		fd, ok := n.(*ast.FuncDecl)
		if !ok || fd.Name.Name != os.Args[2] {
			return true
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok || len(as.Rhs) != 1 {
				return true
			}
			cl, ok := as.Rhs[0].(*ast.CompositeLit)
			if !ok {
				return true
			}
			if _, ok := cl.Type.(*ast.ArrayType); !ok {
				return true
			}
			for _, el := range cl.Elts {
				c := conv(el)
				if m, ok := c.(map[string]any); ok {
					m["_line"] = fs.Position(el.Pos()).Line
				}
				out = append(out, c)
			}
			return false
		})
		return false
	})
	json.NewEncoder(os.Stdout).Encode(out)
}

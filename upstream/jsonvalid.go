package upstream

// validJSON reports whether data is one JSON value (RFC 8259) with only
// whitespace around it: exactly what encoding/json.Valid accepts,
// including its limit of 10 000 nested arrays and objects and its
// acceptance of any byte >= 0x80 inside strings (FuzzValidJSON compares
// the two on every input). encoding/json's scanner calls a function per
// byte; this one loops over string contents, digits and whitespace in
// place, which matters because every upstream body is checked: it was 4 to
// 5 % of the gateway's CPU per dashboard.
func validJSON(data []byte) bool {
	var buf [32]byte
	stack := buf[:0] // '{' or '[' per open container
	i := skipSpace(data, 0)
	for {
		// A value starts at i.
		if i >= len(data) {
			return false
		}
		switch c := data[i]; c {
		case '{', '[':
			if len(stack) >= maxJSONDepth {
				return false
			}
			j := skipSpace(data, i+1)
			if j < len(data) && data[j] == c+2 { // '}' is '{'+2, ']' is '['+2
				i = j + 1
				break // an empty container is a complete value
			}
			stack = append(stack, c)
			i = j
			if c == '{' {
				if i = objectKey(data, i); i < 0 {
					return false
				}
			}
			continue // the first element's value
		case '"':
			if i = scanString(data, i+1); i < 0 {
				return false
			}
		case 't':
			if !literal(data, i, "true") {
				return false
			}
			i += 4
		case 'f':
			if !literal(data, i, "false") {
				return false
			}
			i += 5
		case 'n':
			if !literal(data, i, "null") {
				return false
			}
			i += 4
		default:
			if i = scanNumber(data, i); i < 0 {
				return false
			}
		}
		// After a value: close containers, or go on to the next element.
		for {
			i = skipSpace(data, i)
			if len(stack) == 0 {
				return i == len(data)
			}
			if i >= len(data) {
				return false
			}
			top, c := stack[len(stack)-1], data[i]
			if c == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if c != ',' {
				return false
			}
			i = skipSpace(data, i+1)
			if top == '{' {
				if i = objectKey(data, i); i < 0 {
					return false
				}
			}
			break
		}
	}
}

// maxJSONDepth is encoding/json's limit on nesting.
const maxJSONDepth = 10000

// objectKey reads `"key" :` and the whitespace after it from i, and
// returns where the value starts, or -1.
func objectKey(data []byte, i int) int {
	if i >= len(data) || data[i] != '"' {
		return -1
	}
	if i = scanString(data, i+1); i < 0 {
		return -1
	}
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != ':' {
		return -1
	}
	return skipSpace(data, i+1)
}

// scanString reads a string's contents from i (after the opening quote)
// and returns the index after the closing quote, or -1.
func scanString(data []byte, i int) int {
	for i < len(data) {
		c := data[i]
		if plainStringByte[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			return i + 1
		case c != '\\':
			return -1 // a control character
		}
		i++
		if i >= len(data) {
			return -1
		}
		switch data[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if len(data)-i < 5 || !isHex(data[i+1]) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) {
				return -1
			}
			i += 5
		default:
			return -1
		}
	}
	return -1
}

// plainStringByte: bytes that stand for themselves inside a string; not
// '"', '\\' or a control character.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanNumber reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? from i
// and returns the index after it, or -1. Whatever follows is the caller's
// to check.
func scanNumber(data []byte, i int) int {
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return -1
	case data[i] == '0':
		i++
	case data[i] >= '1' && data[i] <= '9':
		i = skipDigits(data, i+1)
	default:
		return -1
	}
	if i < len(data) && data[i] == '.' {
		j := skipDigits(data, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := skipDigits(data, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func literal(data []byte, i int, word string) bool {
	return len(data)-i >= len(word) && string(data[i:i+len(word)]) == word
}

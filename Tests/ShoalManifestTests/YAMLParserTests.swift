import ShoalCore
import ShoalManifest
import Testing

@Suite struct YAMLParserTests {
    @Test func treeHasOneBasedMarksStylesAndOrderedKeys() throws {
        let root = try #require(try parse("""
            # comment
            b: 'x'
            a:
              - "y"
              - z
            c: {k: v}
            d: |
              lit
            """))
        #expect(root.mark == YAMLMark(file: "t.yaml", line: 2, column: 1))
        let pairs = try root.mapping()
        #expect(pairs.map(\.key.keyText) == ["b", "a", "c", "d"])
        #expect(pairs[0].value == YAMLNode(.scalar(YAMLScalar("x", style: .singleQuoted)), mark: YAMLMark(file: "t.yaml", line: 2, column: 4)))
        let items = try pairs[1].value.sequence()
        #expect(pairs[1].value.mark.line == 4 && pairs[1].value.mark.column == 3)  // at the first '-'
        #expect(items.map(\.scalar) == [YAMLScalar("y", style: .doubleQuoted), YAMLScalar("z")])
        #expect(items[1].mark == YAMLMark(file: "t.yaml", line: 5, column: 5))
        let inner = try pairs[2].value.mapping()
        #expect(pairs[2].value.mark.column == 4)
        #expect(inner[0].value == YAMLNode(.scalar(YAMLScalar("v")), mark: YAMLMark(file: "t.yaml", line: 6, column: 8)))
        #expect(pairs[3].value.scalar == YAMLScalar("lit", style: .literal))  // no newline at the end of the input
    }

    @Test(arguments: [
        ("42", YAMLValue.int(42)), ("-7", .int(-7)), ("+3", .int(3)), ("0o17", .int(15)), ("0x1F", .int(31)),
        ("true", .bool(true)), ("False", .bool(false)), ("null", .null), ("~", .null), ("", .null),
        ("1.5", .float(1.5)), ("1e3", .float(1000)), (".inf", .float(.infinity)),
        ("yes", .string("yes")), ("0x", .string("0x")), ("08080", .int(8080)), ("1.2.3", .string("1.2.3")),
    ])
    func plainScalarsFollowTheCoreSchema(text: String, value: YAMLValue) {
        #expect(YAMLScalar(text).value == value)
    }

    @Test func quotedAndBlockScalarsAreStrings() throws {
        #expect(YAMLScalar("8080", style: .doubleQuoted).value == .string("8080"))
        #expect(YAMLScalar("true", style: .singleQuoted).value == .string("true"))
        #expect(YAMLScalar("null", style: .literal).value == .string("null"))
        let root = try #require(try parse("a: \"8080\"\nb: 8080\n"))
        #expect(try root.mapping().map { $0.value.kindDescription } == [#"string "8080""#, "integer 8080"])
    }

    @Test func integerTooLargeForIntIsOutOfRangeNotAString() throws {
        let node = try #require(try parse("99999999999999999999999"))
        #expect(throws: Diagnostic(file: "t.yaml", line: 1, column: 1, message: "port must be between 1 and 65535, found 99999999999999999999999")) {
            try node.int("port", in: 1...65535)
        }
    }

    @Test func sharedAnchorsExpandWithTheAnchorsPosition() throws {
        let root = try #require(try parse("base: &b {x: 1}\ncopy: *b\n"))
        let pairs = try root.mapping()
        #expect(pairs[1].value == pairs[0].value)
        #expect(pairs[1].value.mark == YAMLMark(file: "t.yaml", line: 1, column: 7))  // at "&b"
    }

    @Test(arguments: [
        ("a: &a [x, *a]\n", "t.yaml:1:4: YAML alias refers to a collection that contains it (a cycle)"),
        ("a: &a {k: [*a]}\n", "t.yaml:1:4: YAML alias refers to a collection that contains it (a cycle)"),
        ("&r [*r]\n", "t.yaml:1:1: YAML alias refers to a collection that contains it (a cycle)"),
    ])
    func cyclicAliasesAreErrors(yaml: String, expected: String) {
        #expect(throws: Diagnostic.self) { try parse(yaml) }
        #expect(catchDiagnostic { try parse(yaml) } == expected)
    }

    @Test func billionLaughsStopsAtTheNodeLimit() {
        var lines = [#"a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]"#]
        for level in 1..<10 {
            let name = String(UnicodeScalar(UInt8(97 + level)))
            let previous = String(UnicodeScalar(UInt8(96 + level)))
            lines.append("\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]")
        }
        let message = catchDiagnostic { try parse(lines.joined(separator: "\n")) }
        #expect(message == "t.yaml:1:38: too many YAML nodes (more than 100000, counting each use of an alias)")
    }

    @Test func aliasesCannotNestDeeperThanTheLimit() {
        // Each level is 3 deep in the text but aliases stack them: l6 holds l5 … l0, 22 deep,
        // so the 21st level is l0's second '['.
        var yaml = "l0: &l0 [[[x]]]\n"
        for level in 1...10 { yaml += "l\(level): &l\(level) [[[*l\(level - 1)]]]\n" }
        let message = catchDiagnostic { try parse(yaml, limits: YAMLLimits(maxDepth: 20)) }
        #expect(message == "t.yaml:1:10: YAML nested deeper than 20 levels")
    }

    @Test func deepFlowNestingIsRefusedQuickly() {
        let yaml = String(repeating: "[", count: 500_000)
        #expect(catchDiagnostic { try parse(yaml) } == "t.yaml:1:65: YAML nested deeper than 64 levels")
        let block = (0..<70).map { String(repeating: "  ", count: $0) + "k\($0):" }.joined(separator: "\n")
        #expect(catchDiagnostic { try parse(block) } == "t.yaml:65:129: YAML nested deeper than 64 levels")
    }

    @Test func tooManyAnchorsAreRefused() {
        let yaml = (0...256).map { "- &a\($0) x" }.joined(separator: "\n")
        #expect(catchDiagnostic { try parse(yaml) } == "t.yaml:257:3: too many YAML anchors (more than 256)")
    }

    @Test func syntaxErrorsCarryLibyamlsProblemMark() {
        #expect(catchDiagnostic { try parse("name: a\n  port: 1\n") } == "t.yaml:2:7: invalid YAML: mapping values are not allowed in this context")
        #expect(catchDiagnostic { try parse("a: [1, 2\nb: 3\n") }
            == "t.yaml:2:2: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at 1:4)")
        #expect(catchDiagnostic { try parse("a: *nope\n") } == "t.yaml:1:4: invalid YAML: found undefined alias")
    }

    @Test func invalidEncodingIsAReaderErrorAtTheByte() {
        let message = catchDiagnostic { try YAMLParser().parse(bytes: Array("name: é\nport: ".utf8) + [0xFF, 0x0A], file: "t.yaml") }
        #expect(message == "t.yaml:2:7: invalid YAML: invalid leading UTF-8 octet")
    }

    @Test func aSecondDocumentIsAnError() {
        #expect(catchDiagnostic { try parse("a: 1\n---\nb: 2\n") } == "t.yaml:2:1: expected one YAML document, found a second one")
    }

    @Test func emptyStreamsHaveNoRoot() throws {
        #expect(try parse("") == nil)
        #expect(try parse("# only a comment\n\n") == nil)
    }

    @Test func fileSizeIsLimited() {
        let message = catchDiagnostic { try YAMLParser(limits: YAMLLimits(maxFileSize: 10)).parse("name: service-a\n", file: "t.yaml") }
        #expect(message == "t.yaml: file is too large (16 bytes; the limit is 10)")
    }
}

/// The description of the diagnostic `body` throws, or nil.
func catchDiagnostic<T>(_ body: () throws -> T) -> String? {
    do {
        _ = try body()
        return nil
    } catch let diagnostic as Diagnostic {
        return diagnostic.description
    } catch {
        return "not a Diagnostic: \(error)"
    }
}

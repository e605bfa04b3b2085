import Foundation
import ShoalCore
import ShoalManifest
import Testing

/// Bad input, tried at scale: tens of thousands of generated manifests and cluster files (random
/// bytes, YAML-ish token soup, mutations of the real `services.d/` manifests, then big and
/// hostile ones). Each must load, or fail with diagnostics that name the file and say where —
/// never crash, never hang. Seeds are fixed, so a failure repeats; each test prints its count.
@Suite struct ManifestFuzzTests {
    @Test("20 000 small random, token-soup and mutated manifests each load or fail with positioned diagnostics")
    func smallManifests() throws {
        var random = SplitMix64(seed: 0x5EED_0001)
        let originals = try Self.realManifests()
        var tally = FuzzTally(name: "small manifests", timeLimit: .seconds(1))
        for round in 0..<20_000 {
            let bytes: [UInt8] = switch round % 3 {
            case 0: FuzzInput.randomBytes(&random, maxLength: 200)
            case 1: Array(FuzzInput.tokenSoup(&random).utf8)
            default: FuzzInput.mutate(originals[round % originals.count], &random)
            }
            let text = String(decoding: bytes, as: UTF8.self)
            tally.check(text, lineBound: FuzzInput.lineBound(text.utf8)) { ManifestLoader().load(text: text, file: FuzzTally.file) }
            // Bytes that are not UTF-8 as they are: libyaml's reader sees them.
            if !text.utf8.elementsEqual(bytes) {
                tally.check(bytes, lineBound: FuzzInput.lineBound(bytes)) { Self.loadBytes(bytes) }
            }
        }
        tally.report()
        #expect(tally.tried >= 20_000)
        #expect(tally.loaded > 0, "some mutations leave a manifest valid; none loaded, so the checks saw only failures")
    }

    @Test("150 big manifests (1 MB scalars, 10 000-deep nesting, alias bombs, huge keys) fail or load in bounded time")
    func bigManifests() throws {
        var random = SplitMix64(seed: 0x5EED_0002)
        let originals = try Self.realManifests()
        var tally = FuzzTally(name: "big manifests", timeLimit: .seconds(5))
        for round in 0..<150 {
            let text = FuzzInput.big(round, &random, originals: originals)
            tally.check(text, lineBound: FuzzInput.lineBound(text.utf8)) { ManifestLoader().load(text: text, file: FuzzTally.file) }
        }
        tally.report()
        #expect(tally.tried == 150)
        #expect(tally.loaded > 0, "the huge arguments within the size limit load")
    }

    @Test("5 000 mutated and random cluster files each load or fail with positioned diagnostics")
    func clusterFiles() {
        var random = SplitMix64(seed: 0x5EED_0003)
        let original = Array("""
            # The broker's pool.
            hosts:
              - name: c1
                slots: 2
              - name: c2.example.org
              - {name: c3, slots: 64}

            """.utf8)
        var tally = FuzzTally(name: "cluster files", timeLimit: .seconds(1))
        for round in 0..<5_000 {
            let bytes: [UInt8] = switch round % 4 {
            case 0: FuzzInput.randomBytes(&random, maxLength: 200)
            case 1: Array(FuzzInput.tokenSoup(&random).utf8)
            default: FuzzInput.mutate(original, &random)
            }
            let text = String(decoding: bytes, as: UTF8.self)
            tally.check(text, lineBound: FuzzInput.lineBound(text.utf8)) { ClusterLoader().load(text: text, file: FuzzTally.file) }
        }
        for round in 0..<20 {
            let text = FuzzInput.big(round, &random, originals: [original])
            tally.check(text, lineBound: FuzzInput.lineBound(text.utf8)) { ClusterLoader().load(text: text, file: FuzzTally.file) }
        }
        tally.report()
        #expect(tally.tried == 5_020)
        #expect(tally.loaded > 0)
    }

    /// The manifests in `services.d/`, as bytes.
    static func realManifests() throws -> [[UInt8]] {
        let directory = packageRoot.appendingPathComponent("services.d")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(names.count >= 4)
        return try names.map { Array(try Data(contentsOf: directory.appendingPathComponent($0))) }
    }

    /// Loads raw bytes the way `ManifestLoader` loads text.
    static func loadBytes(_ bytes: [UInt8]) -> Result<LoadedManifest, DiagnosticList> {
        do throws(Diagnostic) {
            return ManifestDecoder.decode(try YAMLParser().parse(bytes: bytes, file: FuzzTally.file), file: FuzzTally.file)
        } catch {
            return .failure(DiagnosticList([error]))
        }
    }
}

/// Counts inputs and checks each answer: success, or diagnostics that name the file, carry a
/// message, and point at a line of it (only whole-file problems have none) — within a time limit.
private struct FuzzTally {
    static let file = "fuzz.yaml"
    /// Problems about the file as a whole, which have no line.
    static let wholeFileProblems = ["file is too large", "empty manifest", "empty cluster file", "out of memory"]

    let name: String
    let timeLimit: Duration
    var tried = 0
    var loaded = 0
    var slowest: Duration = .zero
    var broken = 0
    private let start = ContinuousClock.now

    init(name: String, timeLimit: Duration) {
        self.name = name
        self.timeLimit = timeLimit
    }

    mutating func check<Input, Value>(_ input: Input, lineBound: Int, _ load: () -> Result<Value, DiagnosticList>) {
        let started = ContinuousClock.now
        let result = load()
        let took = ContinuousClock.now - started
        tried += 1
        slowest = max(slowest, took)
        if took > timeLimit {
            record("took \(took) (limit \(timeLimit))", input)
        }
        switch result {
        case .success:
            loaded += 1
        case .failure(let list):
            if list.diagnostics.isEmpty { record("failed with no diagnostic", input) }
            for diagnostic in list.diagnostics {
                if let problem = Self.problem(with: diagnostic, lineBound: lineBound) { record("\(problem): \(diagnostic)", input) }
            }
        }
    }

    static func problem(with diagnostic: Diagnostic, lineBound: Int) -> String? {
        if diagnostic.file != file { return "names another file" }
        if diagnostic.message.isEmpty { return "has no message" }
        if diagnostic.line == 0 {
            return wholeFileProblems.contains(where: diagnostic.message.contains) ? nil : "has no line"
        }
        if diagnostic.line < 0 || diagnostic.line > lineBound { return "line outside the file (it has at most \(lineBound))" }
        if diagnostic.column < 1 { return "has a line but no column" }
        return nil
    }

    /// Records at most a few issues (with the input, shortened), counting the rest.
    private mutating func record<Input>(_ problem: String, _ input: Input) {
        broken += 1
        guard broken <= 5 else { return }
        let shown = String(String(describing: input).prefix(300))
        Issue.record("\(name) #\(tried): \(problem)\ninput: \(shown.debugDescription)")
    }

    func report() {
        let total = ContinuousClock.now - start
        print("ManifestFuzz \(name): \(tried) inputs, \(loaded) loaded, slowest \(slowest), total \(total), \(broken) broken")
        #expect(broken == 0, "\(broken) of \(tried) inputs got a crash-free but wrong answer or were too slow")
    }
}

/// Input generators, all driven by a seeded ``SplitMix64``.
private enum FuzzInput {
    /// Tokens a YAML manifest is made of, plus the characters that break parsers.
    static let tokens: [String] = [
        "name", "frontend", "command", "args", "env", "port", "health_check", "concurrency", "thresholds", "low",
        "high", "backends", "min", "max", "priority", "weight", "drain_timeout", "hosts", "slots", "a", "fe-a",
        "shoal-webserver", "{port}", "/health", "8080", "0", "-1", "65536", "0x1F", "0o17", "1e9", ".inf", "~", "null",
        "true", "30s", "1h", "-5s", "99999999999999999999", ":", ": ", "- ", "-", "[", "]", "{", "}", ",", "? ", "|", ">",
        "|-", "'", "\"", "#", "---", "...", "%YAML 1.1", "%TAG ! tag:x,2000:", "!!str", "!!int", "!!map", "!foo", "&a",
        "*a", "&b", "*b", "<<: *a", "\n", "\n", "\n  ", "\n    ", " ", "  ", "\t", "\r", "\r\n", "\u{0}", "\u{7}",
        "\u{85}", "\u{2028}", "\u{FEFF}", "é", "日本", "\\", "\\x00", "@", "`", "%", "=",
    ]

    /// Insertions the brief names: anchors, aliases, brackets, colons, tabs, NUL.
    static let insertions: [[UInt8]] = ["&a ", "*a", "&a", "[", "{", "]", "}", ":", ": ", "\t", "\u{0}", "\n- ", "\"", "'", "#", "!!int ", "<<: *a\n"].map { Array($0.utf8) }

    static func randomBytes(_ random: inout SplitMix64, maxLength: Int) -> [UInt8] {
        (0..<Int.random(in: 0...maxLength, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
    }

    static func tokenSoup(_ random: inout SplitMix64) -> String {
        (0..<Int.random(in: 1...60, using: &random)).map { _ in tokens.randomElement(using: &random)! }.joined()
    }

    /// One to four byte flips, deletions, duplications or insertions.
    static func mutate(_ original: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = original
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let at = Int.random(in: 0...bytes.count, using: &random)
            let length = min(Int.random(in: 1...40, using: &random), bytes.count - at)
            switch Int.random(in: 0..<5, using: &random) {
            case 0 where at < bytes.count:
                bytes[at] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
            case 1:
                bytes.removeSubrange(at..<(at + length))
            case 2:
                let copy = Array(bytes[at..<(at + length)])
                bytes.insert(contentsOf: copy, at: at)
            case 3:
                bytes.insert(UInt8.random(in: 0...255, using: &random), at: at)
            default:
                bytes.insert(contentsOf: insertions.randomElement(using: &random)!, at: at)
            }
        }
        return bytes
    }

    /// Big and hostile input number `round`: the first 15 have tens of thousands of nodes (the
    /// slow kind, linear in the size), the rest cycle through the other kinds.
    static func big(_ round: Int, _ random: inout SplitMix64, originals: [[UInt8]]) -> String {
        let original = String(decoding: originals[round % originals.count], as: UTF8.self)
        let size = Int.random(in: 100_000...1_100_000, using: &random)  // some over the 1 MiB limit
        switch round < 15 ? round % 3 : 3 + round % 8 {
        case 0:  // Many unknown keys, each looked up for a suggestion.
            return original + (0..<Int.random(in: 2_000...12_000, using: &random)).map { "unknown_key_\($0): 1\n" }.joined()
        case 1:  // Many duplicate keys.
            return original + String(repeating: "port: 8080\n", count: Int.random(in: 5_000...20_000, using: &random))
        case 2:  // A long flow sequence, some past the node limit.
            return "args: [" + Array(repeating: "x", count: Int.random(in: 20_000...120_000, using: &random)).joined(separator: ",") + "]\n"
        case 3:  // A huge scalar value, in a manifest that is otherwise valid.
            return "name: big\ncommand: shoal-webserver\nport: 8080\nargs: [\"" + String(repeating: "x", count: size) + "\"]\n"
        case 4:  // A huge unknown key: plain (libyaml caps simple keys at 1024 characters), or explicit.
            let key = String(repeating: "k", count: size)
            return original + (round % 16 == 4 ? key + ": 1\n" : "? " + key + "\n: 1\n")
        case 5:  // Deep flow nesting, closed or not.
            let depth = Int.random(in: 10_000...12_000, using: &random)
            return "args: " + String(repeating: "[", count: depth) + (round % 16 == 5 ? String(repeating: "]", count: depth) : "")
        case 6:  // Deep flow mappings.
            return String(repeating: "{a: ", count: Int.random(in: 10_000...12_000, using: &random))
        case 7:  // Deep block nesting.
            return (0..<Int.random(in: 100...400, using: &random)).map { String(repeating: " ", count: $0) + "- " }.joined(separator: "\n")
        case 8:  // Billion laughs: ten levels of ten aliases each.
            var lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
            for level in 1...10 {
                lines.append("a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]")
            }
            return original + lines.joined(separator: "\n") + "\n"
        case 9:  // Many anchors, each aliased.
            let count = Int.random(in: 200...2_000, using: &random)
            return (0..<count).map { "k\($0): &x\($0) v\n" }.joined() + (0..<count).map { "r\($0): *x\($0)\n" }.joined()
        default:  // A megabyte of random bytes, or a real manifest with a big run of insertions.
            if round % 16 == 10 {
                return String(decoding: (0..<size).map { _ in UInt8.random(in: 0...255, using: &random) }, as: UTF8.self)
            }
            var bytes = originals[round % originals.count]
            for _ in 0..<2_000 {
                bytes.insert(contentsOf: insertions.randomElement(using: &random)!, at: Int.random(in: 0...bytes.count, using: &random))
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// At most how many lines libyaml can count in `bytes`. It also breaks lines at CR, NEL
    /// (U+0085) and U+2028/U+2029, UTF-16 input has its line breaks as other byte pairs, and it
    /// puts the end of the stream on a line of its own when the last line has no line break.
    static func lineBound(_ bytes: some Sequence<UInt8>) -> Int {
        var count = 2
        for byte in bytes {
            switch byte {
            case 0x0A, 0x0D, 0x85, 0xA8, 0xA9: count += 1
            default: break
            }
        }
        return count
    }
}

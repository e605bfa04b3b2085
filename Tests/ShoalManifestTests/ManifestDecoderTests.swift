import ShoalCore
import ShoalManifest
import Testing

@Suite struct ManifestDecoderTests {
    @Test func everyFieldRoundTripsIntoTheModel() throws {
        let loaded = try manifest("""
            name: svc-1
            frontend: fe-a
            command: /usr/local/bin/server
            args: ["--port", "{port}", --size, 1024, true]
            env:
              MODE: fast
              LEVEL: 3
            port: 8081
            health_check: /ready
            concurrency: 16
            thresholds: {low: 0, high: 100000}
            backends: {min: 1, max: 1024}
            priority: 100
            weight: 1000
            drain_timeout: 250ms
            """).get()
        #expect(loaded.manifest == ServiceManifest(
            name: "svc-1",
            frontend: "fe-a",
            command: "/usr/local/bin/server",
            arguments: ["--port", "{port}", "--size", "1024", "true"],
            environment: ["MODE": "fast", "LEVEL": "3"],
            port: 8081,
            healthCheckPath: "/ready",
            concurrency: 16,
            thresholds: LoadThresholds(low: 0, high: 100_000),
            backends: BackendRange(min: 1, max: 1024),
            priority: 100,
            weight: 1000,
            drainTimeout: .milliseconds(250)
        ))
        #expect(loaded.file == "m.yaml")
        #expect(loaded.mark(of: "port") == YAMLMark(file: "m.yaml", line: 8, column: 7))
        #expect(loaded.manifest.arguments(forPort: 9001) == ["--port", "9001", "--size", "1024", "true"])
    }

    @Test func defaultsFillEveryOptionalKey() throws {
        let loaded = try manifest(minimal).get()
        #expect(loaded.manifest == ServiceManifest(name: "web", command: "shoal-webserver", port: 8080))
        let m = loaded.manifest
        #expect(m.frontend == "localhost" && m.arguments == [] && m.environment == [:])
        #expect(m.healthCheckPath == "/health" && m.concurrency == 8)
        #expect(m.thresholds == LoadThresholds(low: 2, high: 6) && m.backends == BackendRange(min: 0, max: 3))
        #expect(m.priority == 0 && m.weight == 1 && m.drainTimeout == .seconds(30))
    }

    @Test func partialNestedMappingsKeepTheOtherDefault() throws {
        let m = try manifest(minimal + "thresholds: {high: 10}\nbackends:\n  max: 5\n").get().manifest
        #expect(m.thresholds == LoadThresholds(low: 2, high: 10))
        #expect(m.backends == BackendRange(min: 0, max: 5))
    }

    @Test func protocolDefaultsToHTTPAndTakesTCP() throws {
        #expect(try manifest(minimal).get().manifest.serviceProtocol == .http)
        #expect(try manifest(minimal + "protocol: tcp\n").get().manifest.serviceProtocol == .tcp)
        #expect(try manifest(minimal + "protocol: \"http\"\n").get().manifest.serviceProtocol == .http)
    }

    @Test func localDefaultsToServeAndTakesStandby() throws {
        #expect(try manifest(minimal).get().manifest.local == .serve)
        #expect(try manifest(minimal + "local: standby\n").get().manifest.local == .standby)
    }

    @Test(arguments: [
        ("30", Duration.seconds(30)), ("\"45\"", .seconds(45)), ("250ms", .milliseconds(250)), ("30s", .seconds(30)),
        ("2m", .seconds(120)), ("1h", .seconds(3600)), ("3600", .seconds(3600)), ("1ms", .milliseconds(1)),
    ])
    func durations(text: String, expected: Duration) throws {
        #expect(try manifest(minimal + "drain_timeout: \(text)\n").get().manifest.drainTimeout == expected)
    }

    /// One problem per case: the line appended to the minimal manifest, and the exact diagnostic.
    @Test(arguments: [
        // Unknown keys, with and without a suggestion.
        ("concurency: 4", "m.yaml:4:1: unknown key 'concurency' (did you mean 'concurrency'?)"),
        ("health-check: /h", "m.yaml:4:1: unknown key 'health-check' (did you mean 'health_check'?)"),
        ("Port2: 1", "m.yaml:4:1: unknown key 'Port2' (did you mean 'port'?)"),
        ("replicas: 3", "m.yaml:4:1: unknown key 'replicas'"),
        ("thresholds: {lo: 1}", "m.yaml:4:14: unknown key 'lo' in thresholds (did you mean 'low'?)"),
        ("backends: {count: 1}", "m.yaml:4:12: unknown key 'count' in backends (known keys: min, max)"),
        ("[1]: x", "m.yaml:4:1: expected a string key, found a sequence"),
        // Wrong types.
        ("concurrency: \"8\"", #"m.yaml:4:14: expected an integer, found string "8""#),
        ("frontend: 12", "m.yaml:4:11: expected a string, found integer 12"),
        ("health_check: null", "m.yaml:4:15: expected a string, found null"),
        ("args: --port", #"m.yaml:4:7: expected a sequence of strings, found string "--port""#),
        ("args: [a, [b]]", "m.yaml:4:11: expected a string, found a sequence"),
        ("args: [--port, {port}]", #"m.yaml:4:16: expected a string, found a mapping; quote it: "{port}""#),
        ("env: [A]", "m.yaml:4:6: expected a mapping, found a sequence"),
        ("env: {A: {b: c}}", "m.yaml:4:10: expected a string, found a mapping"),
        ("env: {A: }", "m.yaml:4:10: expected a string, found null"),
        ("thresholds: 5", "m.yaml:4:13: expected a mapping, found integer 5"),
        ("weight: 1.5", "m.yaml:4:9: expected an integer, found float 1.5"),
        ("priority: true", "m.yaml:4:11: expected an integer, found boolean true"),
        // Out of range.
        ("concurrency: 0", "m.yaml:4:14: concurrency must be between 1 and 10000, found 0"),
        ("concurrency: 10001", "m.yaml:4:14: concurrency must be between 1 and 10000, found 10001"),
        ("priority: -1", "m.yaml:4:11: priority must be between 0 and 100, found -1"),
        ("weight: 1001", "m.yaml:4:9: weight must be between 1 and 1000, found 1001"),
        ("thresholds: {high: 100001}", "m.yaml:4:20: thresholds.high must be between 0 and 100000, found 100001"),
        ("backends: {min: -1}", "m.yaml:4:17: backends.min must be between 0 and 1024, found -1"),
        ("backends: {max: 0x401}", "m.yaml:4:17: backends.max must be between 0 and 1024, found 0x401"),
        // Relations between fields, at the nested mapping.
        ("thresholds: {low: 5, high: 5}", "m.yaml:4:13: thresholds.low (5) must be less than thresholds.high (5)"),
        ("thresholds: {low: 7}", "m.yaml:4:13: thresholds.low (7) must be less than thresholds.high (6, the default)"),
        ("backends: {min: 4, max: 3}", "m.yaml:4:11: backends.min (4) must not be greater than backends.max (3)"),
        ("backends: {min: 5}", "m.yaml:4:11: backends.min (5) must not be greater than backends.max (3, the default)"),
        // Durations.
        ("drain_timeout: 30 sec", #"m.yaml:4:16: bad duration "30 sec" for drain_timeout: expected a whole number with a unit ms, s, m or h, such as "250ms", "30s" or "2m""#),
        ("drain_timeout: 1.5s", #"m.yaml:4:16: bad duration "1.5s" for drain_timeout: expected a whole number with a unit ms, s, m or h, such as "250ms", "30s" or "2m""#),
        ("drain_timeout: 1.5", #"m.yaml:4:16: expected a duration such as "250ms", "30s" or "2m", found float 1.5"#),
        ("drain_timeout: 0", "m.yaml:4:16: drain_timeout must be more than 0 and at most 1h, found 0"),
        ("drain_timeout: 0ms", "m.yaml:4:16: drain_timeout must be more than 0 and at most 1h, found 0ms"),
        ("drain_timeout: 61m", "m.yaml:4:16: drain_timeout must be more than 0 and at most 1h, found 61m"),
        ("drain_timeout: -5", "m.yaml:4:16: drain_timeout must be more than 0 and at most 1h, found -5"),
        ("drain_timeout: 99999999999999999999s", "m.yaml:4:16: drain_timeout must be more than 0 and at most 1h, found 99999999999999999999s"),
        // The protocol.
        ("protocol: udp", "m.yaml:4:11: protocol must be 'http' or 'tcp', found \"udp\""),
        ("protocol: HTTP", "m.yaml:4:11: protocol must be 'http' or 'tcp', found \"HTTP\""),
        ("protocol: 1", "m.yaml:4:11: expected a string, found integer 1"),
        ("local: always", "m.yaml:4:8: local must be 'standby' or 'serve', found \"always\""),
        // Strings with rules.
        ("health_check: health", #"m.yaml:4:15: health_check must be a path starting with '/', found "health""#),
        ("frontend: \"\"", #"m.yaml:4:11: frontend must be a host name, found """#),
        ("env: {my-var: x}", #"m.yaml:4:7: bad environment variable name "my-var": use letters, digits and '_', not starting with a digit"#),
        ("env: {1X: x}", #"m.yaml:4:7: bad environment variable name "1X": use letters, digits and '_', not starting with a digit"#),
        ("env: {PORT: 1}", "m.yaml:4:7: env must not set PORT: Shoal sets it to each instance's port"),
        // Duplicates.
        ("port: 8081", "m.yaml:4:1: duplicate key 'port' (first at 3:1)"),
        ("env: {A: x, A: y}", "m.yaml:4:13: duplicate key 'A' in env (first at 4:7)"),
    ])
    func oneProblem(line: String, expected: String) {
        #expect(problems(minimal + line + "\n") == [expected])
    }

    @Test(arguments: [
        ("Web", #"m.yaml:1:7: bad service name "Web": use 1 to 32 lower-case letters, digits and '-', starting with a letter or digit"#),
        ("-web", #"m.yaml:1:7: bad service name "-web": use 1 to 32 lower-case letters, digits and '-', starting with a letter or digit"#),
        ("web_1", #"m.yaml:1:7: bad service name "web_1": use 1 to 32 lower-case letters, digits and '-', starting with a letter or digit"#),
        ("\"\"", #"m.yaml:1:7: bad service name "": use 1 to 32 lower-case letters, digits and '-', starting with a letter or digit"#),
        (String(repeating: "a", count: 33), "m.yaml:1:7: bad service name \"\(String(repeating: "a", count: 33))\": use 1 to 32 lower-case letters, digits and '-', starting with a letter or digit"),
        ("42", "m.yaml:1:7: expected a string, found integer 42"),
    ])
    func badNames(name: String, expected: String) {
        #expect(problems("name: \(name)\ncommand: x\nport: 1\n") == [expected])
    }

    @Test func goodNames() {
        for name in ["a", "web-2", "9lives", String(repeating: "z", count: 32), "a-"] {
            #expect(problems("name: \(name)\ncommand: x\nport: 1\n") == [], "\(name)")
        }
    }

    @Test(arguments: [
        ("0", "m.yaml:3:7: port must be between 1 and 65535, found 0"),
        ("65536", "m.yaml:3:7: port must be between 1 and 65535, found 65536"),
        ("99999999999999999999", "m.yaml:3:7: port must be between 1 and 65535, found 99999999999999999999"),
        ("\"8080\"", #"m.yaml:3:7: expected an integer, found string "8080""#),
        ("'8080'", #"m.yaml:3:7: expected an integer, found string "8080""#),
        ("http", #"m.yaml:3:7: expected an integer, found string "http""#),
        ("[8080]", "m.yaml:3:7: expected an integer, found a sequence"),
    ])
    func badPorts(port: String, expected: String) {
        #expect(problems("name: web\ncommand: x\nport: \(port)\n") == [expected])
    }

    @Test func missingRequiredKeysPointAtTheMapping() {
        #expect(problems("# a comment first\n\nfrontend: fe-a\n") == [
            "m.yaml:3:1: missing required key 'name'",
            "m.yaml:3:1: missing required key 'command'",
            "m.yaml:3:1: missing required key 'port'",
        ])
        #expect(problems("  {name: web, command: x}") == ["m.yaml:1:3: missing required key 'port'"])
        #expect(problems(minimal + "command: \"  \"\n") == ["m.yaml:4:1: duplicate key 'command' (first at 2:1)"])
        #expect(problems("name: web\ncommand: \" \"\nport: 1\n") == ["m.yaml:2:10: command must not be empty"])
    }

    @Test func theRootMustBeAMapping() {
        #expect(problems("- name: web\n") == ["m.yaml:1:1: expected a mapping of manifest keys to values, found a sequence"])
        #expect(problems("\n\nweb\n") == [#"m.yaml:3:1: expected a mapping of manifest keys to values, found string "web""#])
        #expect(problems("") == ["m.yaml: empty manifest: expected a mapping with at least 'name', 'command' and 'port'"])
        #expect(problems("# nothing\n") == ["m.yaml: empty manifest: expected a mapping with at least 'name', 'command' and 'port'"])
    }

    @Test func yamlProblemsStopTheFile() {
        #expect(problems("name: web\ncommand: [x\nport: 1\n") == [
            "m.yaml:3:5: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at 2:10)",
        ])
        #expect(problems(minimal + "---\nname: other\n") == ["m.yaml:4:1: expected one YAML document, found a second one"])
        #expect(problems("a: &x [*x]\n") == ["m.yaml:1:4: YAML alias refers to a collection that contains it (a cycle)"])
    }

    @Test func anchorsAndAliasesWorkInManifests() throws {
        // An aliased node reports problems at its anchor.
        #expect(problems("""
            name: web
            command: x
            port: 8080
            args: &args [--a, --b]
            env: {A: *args}
            """) == ["m.yaml:4:7: expected a string, found a sequence"])
        let shared = try manifest("""
            name: &n web
            command: *n
            port: 8080
            thresholds: &t {low: 1, high: 4}
            backends: {min: 0, max: 4}
            """).get()
        #expect(shared.manifest.command == "web")
        #expect(shared.manifest.thresholds == LoadThresholds(low: 1, high: 4))
    }

    @Test func everyProblemInAFileIsReportedInPositionOrder() {
        let yaml = """
            name: Bad_Name
            command: ""
            args: [--port, {port}, 1, null]
            env:
              my-var: x
              PORT: 1
            port: "8080"
            concurency: 4
            thresholds: {low: 6, high: 6}
            backends:
              min: 4
              max: 3
            priority: 101
            weight: 0
            drain_timeout: 2h
            drain_timeout: 1
            health_check: health
            frontend: ""
            """
        #expect(problems(yaml, file: "services.d/bad.yaml") == [
            #"services.d/bad.yaml:1:7: bad service name "Bad_Name": use 1 to 32 lower-case letters, digits and '-', starting with a letter or digit"#,
            "services.d/bad.yaml:2:10: command must not be empty",
            #"services.d/bad.yaml:3:16: expected a string, found a mapping; quote it: "{port}""#,
            "services.d/bad.yaml:3:27: expected a string, found null",
            #"services.d/bad.yaml:5:3: bad environment variable name "my-var": use letters, digits and '_', not starting with a digit"#,
            "services.d/bad.yaml:6:3: env must not set PORT: Shoal sets it to each instance's port",
            #"services.d/bad.yaml:7:7: expected an integer, found string "8080""#,
            "services.d/bad.yaml:8:1: unknown key 'concurency' (did you mean 'concurrency'?)",
            "services.d/bad.yaml:9:13: thresholds.low (6) must be less than thresholds.high (6)",
            "services.d/bad.yaml:11:3: backends.min (4) must not be greater than backends.max (3)",
            "services.d/bad.yaml:13:11: priority must be between 0 and 100, found 101",
            "services.d/bad.yaml:14:9: weight must be between 1 and 1000, found 0",
            "services.d/bad.yaml:15:16: drain_timeout must be more than 0 and at most 1h, found 2h",
            "services.d/bad.yaml:16:1: duplicate key 'drain_timeout' (first at 15:1)",
            #"services.d/bad.yaml:17:15: health_check must be a path starting with '/', found "health""#,
            #"services.d/bad.yaml:18:11: frontend must be a host name, found """#,
        ])
    }

    @Test func suggestionsNeedACloseMatch() {
        #expect(problems(minimal + "cmd: x\n") == ["m.yaml:4:1: unknown key 'cmd'"])
        #expect(problems(minimal + "wieght: 2\n") == ["m.yaml:4:1: unknown key 'wieght' (did you mean 'weight'?)"])
        #expect(problems(minimal + "DRAIN_TIMEOUT: 1\n") == ["m.yaml:4:1: unknown key 'DRAIN_TIMEOUT' (did you mean 'drain_timeout'?)"])
    }
}

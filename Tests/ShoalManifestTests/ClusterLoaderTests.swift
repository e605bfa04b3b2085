import Foundation
import ShoalCore
import ShoalManifest
import Testing

/// The problems `yaml` has as a cluster file named `c.yaml`, as printed.
private func clusterProblems(_ yaml: String) -> [String] {
    failures(ClusterLoader().load(text: yaml, file: "c.yaml"))
}

@Suite struct ClusterLoaderTests {
    @Test func hostsLoadInOrderWithDefaultSlots() throws {
        let hosts = try ClusterLoader().load(text: """
            # cluster.yaml
            hosts:
              - name: c1        # PVM host name
                slots: 4
              - name: c2.example.org
              - {name: 10.0.0.7, slots: 64}

            """, file: "c.yaml").get()
        #expect(hosts == [
            PoolHost(name: "c1", slots: 4),
            PoolHost(name: "c2.example.org", slots: PoolHost.defaultSlots),
            PoolHost(name: "10.0.0.7", slots: 64),
        ])
        #expect(PoolHost.defaultSlots == 2)
    }

    @Test func unknownKeysAreReportedWithSuggestions() {
        #expect(clusterProblems("hosts:\n  - name: c1\n    slot: 3\nhost: []\n") == [
            "c.yaml:3:5: unknown key 'slot' in hosts[0] (did you mean 'slots'?)",
            "c.yaml:4:1: unknown key 'host' (did you mean 'hosts'?)",
        ])
        #expect(clusterProblems("hosts:\n  - name: c1\n    cpus: 3\n") == [
            "c.yaml:3:5: unknown key 'cpus' in hosts[0] (known keys: name, slots)",
        ])
    }

    @Test func wrongTypesAreReportedAtTheValue() {
        #expect(clusterProblems("hosts: c1\n") == [
            #"c.yaml:1:8: expected a sequence of hosts, found string "c1""#,
        ])
        #expect(clusterProblems("hosts:\n  - name: c1\n    slots: \"2\"\n  - name: 7\n") == [
            #"c.yaml:3:12: expected an integer, found string "2""#,
            "c.yaml:4:11: expected a string, found integer 7",
        ])
        #expect(clusterProblems("- name: c1\n") == ["c.yaml:1:1: expected a mapping with 'hosts', found a sequence"])
        #expect(clusterProblems("hosts:\n  - [c1, 2]\n") == ["c.yaml:2:5: expected a mapping, found a sequence"])
    }

    @Test func aBareHostNameSaysHowToWriteIt() {
        #expect(clusterProblems("hosts:\n  - c1\n") == [
            "c.yaml:2:5: expected a mapping with 'name' and optionally 'slots', found string \"c1\"; write '- name: c1'",
        ])
    }

    @Test func slotsMustBeWithinRange() {
        #expect(clusterProblems("hosts:\n  - name: c1\n    slots: 0\n  - name: c2\n    slots: 65\n") == [
            "c.yaml:3:12: hosts[0].slots must be between 1 and 64, found 0",
            "c.yaml:5:12: hosts[1].slots must be between 1 and 64, found 65",
        ])
        #expect(clusterProblems("hosts:\n  - name: c1\n    slots: 99999999999999999999999\n") == [
            "c.yaml:3:12: hosts[0].slots must be between 1 and 64, found 99999999999999999999999",
        ])
    }

    @Test func hostsMustBePresentAndNotEmpty() {
        #expect(failures(ClusterLoader().load(text: "", file: "c.yaml")) == [
            "c.yaml: empty cluster file: expected a mapping with 'hosts', the list of pool hosts",
        ])
        #expect(clusterProblems("# nothing but a comment\n") == [
            "c.yaml: empty cluster file: expected a mapping with 'hosts', the list of pool hosts",
        ])
        #expect(clusterProblems("hosts: []\n") == ["c.yaml:1:8: hosts must list at least one host"])
        #expect(clusterProblems("hosts:\n") == ["c.yaml:1:7: hosts must list at least one host"])
        #expect(clusterProblems("slots: 2\n") == [
            "c.yaml:1:1: unknown key 'slots' (known keys: hosts)",
            "c.yaml:1:1: missing required key 'hosts'",
        ])
        #expect(clusterProblems("hosts:\n  - slots: 2\n") == ["c.yaml:2:5: missing required key 'name' in hosts[0]"])
    }

    @Test func duplicateHostNamesAreReportedAtTheLaterOne() {
        #expect(clusterProblems("hosts:\n  - name: c1\n  - name: c2\n  - name: C1\n    slots: 3\n") == [
            "c.yaml:4:11: duplicate host name 'C1' (first at 2:11)",
        ])
    }

    @Test func hostNamesMustBeHostnames() {
        let bad = ["c 1", "c_1", "-c1", "c1-", "c1..x", ".c1", "c1.", "", "ü1", String(repeating: "a", count: 64)]
        for name in bad {
            let problems = clusterProblems("hosts:\n  - name: \"\(name)\"\n")
            #expect(problems.count == 1, "\(name)")
            #expect(problems.first?.hasPrefix("c.yaml:2:11: bad host name ") == true, "\(name)")
        }
        let long = (0..<4).map { _ in String(repeating: "a", count: 63) }.joined(separator: ".")  // 255 characters
        #expect(clusterProblems("hosts:\n  - name: \(long)\n").count == 1)
        let longest = String(long.dropFirst(2))  // 253 characters, first label 61
        #expect(clusterProblems("hosts:\n  - name: \(longest)\n") == [])
        #expect(clusterProblems("hosts:\n  - name: \"c_1\"\n") == [
            #"c.yaml:2:11: bad host name "c_1": use 1 to 253 letters, digits, '-' and '.', in labels of at most 63 that neither start nor end with '-'"#,
        ])
    }

    @Test func everyProblemIsReportedInPositionOrder() {
        #expect(clusterProblems("hosts:\n  - name: c1\n    slots: 0\n  - name: c_2\n  - name: c1\nextra: 1\n") == [
            "c.yaml:3:12: hosts[0].slots must be between 1 and 64, found 0",
            #"c.yaml:4:11: bad host name "c_2": use 1 to 253 letters, digits, '-' and '.', in labels of at most 63 that neither start nor end with '-'"#,
            "c.yaml:5:11: duplicate host name 'c1' (first at 2:11)",
            "c.yaml:6:1: unknown key 'extra' (known keys: hosts)",
        ])
    }

    @Test func theDocumentedProblemsReadAsDocumented() {
        let text = "hosts:\n  - name: c1\n    slot: 3\n  - name: c2\n    slots: 0\n  - name: c1\n  - c3\n"
        #expect(failures(ClusterLoader().load(text: text, file: "cluster.yaml")) == [
            "cluster.yaml:3:5: unknown key 'slot' in hosts[0] (did you mean 'slots'?)",
            "cluster.yaml:5:12: hosts[1].slots must be between 1 and 64, found 0",
            "cluster.yaml:6:11: duplicate host name 'c1' (first at 2:11)",
            #"cluster.yaml:7:5: expected a mapping with 'name' and optionally 'slots', found string "c3"; write '- name: c3'"#,
        ])
    }

    @Test func syntaxErrorsAndMissingFilesAreProblems() throws {
        let syntax = clusterProblems("hosts: [\n")
        #expect(syntax.count == 1 && syntax[0].hasPrefix("c.yaml:") && syntax[0].contains("invalid YAML"))
        #expect(failures(ClusterLoader().load(path: "/nonexistent/cluster.yaml")) == [
            "/nonexistent/cluster.yaml: no such file or directory",
        ])
        let directory = try temporaryDirectory(["cluster.yaml": "hosts:\n  - name: c1\n    slots: 3\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let hosts = try ClusterLoader().load(path: directory.appendingPathComponent("cluster.yaml").path).get()
        #expect(hosts == [PoolHost(name: "c1", slots: 3)])
    }
}

import Foundation
import ShoalCore
import ShoalManifest
import Testing

@Suite struct ManifestLoaderTests {
    @Test func theShippedServicesAreValid() throws {
        let directory = packageRoot.appendingPathComponent("services.d").path
        let loaded = try ManifestLoader().load(paths: [directory]).get()
        let services = loaded.map(\.manifest)
        #expect(services.map(\.name) == ["a", "b", "c", "master2"])
        #expect(services.map(\.frontend) == ["fe-a", "fe-b", "fe-c", "master2"])
        #expect(services.allSatisfy { $0.command == "shoal-webserver" && $0.arguments.contains("{port}") })
        #expect(loaded.map(\.file) == ["a", "b", "c", "master2"].map { "\(directory)/\($0).yaml" })
        // The variations the files are meant to show.
        let size = { (m: ServiceManifest) in m.arguments.firstIndex(of: "--size").map { m.arguments[$0 + 1] } }
        #expect(services.map(size) == ["1024", "102400", "1024", "4096"])
        #expect(services[2].concurrency == 1 && services[2].arguments.contains("10"))
        #expect(services[3].priority > services[0].priority && services[3].weight > services[0].weight)
    }

    @Test func duplicateNamesAndPortsAreReportedAtTheSecondOccurrence() {
        let result = ManifestLoader().load(sources: [
            (file: "services.d/a.yaml", text: "name: a\ncommand: x\n\n\nport: 8081\n"),
            (file: "services.d/b.yaml", text: "name: b\ncommand: x\nport: 8082\n"),
            (file: "services.d/c.yaml", text: "name: a\ncommand: x\nport: 8081\n"),
            (file: "services.d/d.yaml", text: "name: d\ncommand: x\nport:   8082\n"),
        ])
        #expect(failures(result) == [
            "services.d/c.yaml:1:7: service name 'a' is already used (services.d/a.yaml:1:7)",
            "services.d/c.yaml:3:7: port 8081 is already used by service 'a' (services.d/a.yaml:5:7)",
            "services.d/d.yaml:3:9: port 8082 is already used by service 'b' (services.d/b.yaml:3:7)",
        ])
    }

    @Test func brokenManifestsStillTakePartInClashChecks() {
        let result = ManifestLoader().load(sources: [
            (file: "one.yaml", text: "name: Bad\ncommand: x\nport: 9000\n"),
            (file: "two.yaml", text: "name: two\ncommand: x\nport: 9000\nweight: 0\n"),
        ])
        #expect(failures(result) == [
            #"one.yaml:1:7: bad service name "Bad": use 1 to 32 lower-case letters, digits and '-', starting with a letter or digit"#,
            "two.yaml:3:7: port 9000 is already used (one.yaml:3:7)",
            "two.yaml:4:9: weight must be between 1 and 1000, found 0",
        ])
    }

    @Test func directoriesAreReadSortedWithOnlyYAMLFiles() throws {
        let directory = try temporaryDirectory([
            "b.yml": "name: b\ncommand: x\nport: 2\n",
            "a.yaml": "name: a\ncommand: x\nport: 1\n",
            "c.yaml.bak": "not: yaml: at all",
            ".hidden.yaml": "broken: [",
            "README.md": "# notes",
            "sub/d.yaml": "name: d\ncommand: x\nport: 4\n",
        ])
        defer { try? FileManager.default.removeItem(at: directory) }
        let loaded = try ManifestLoader().load(paths: [directory.path + "/"]).get()
        #expect(loaded.map(\.manifest.name) == ["a", "b"])
        #expect(loaded.map(\.file) == [directory.path + "/a.yaml", directory.path + "/b.yml"])
        // A file named explicitly is loaded whatever its name, once even if named twice.
        let explicit = try ManifestLoader().load(paths: [
            directory.appendingPathComponent("sub/d.yaml").path, directory.path, directory.path + "/a.yaml",
        ]).get()
        #expect(explicit.map(\.manifest.name) == ["d", "a", "b"])
    }

    @Test func missingPathsAndUnreadableFilesAreProblems() throws {
        let directory = try temporaryDirectory(["big.yaml": "name: big\n" + String(repeating: "# padding\n", count: 20)])
        defer { try? FileManager.default.removeItem(at: directory) }
        let big = directory.appendingPathComponent("big.yaml").path
        let loader = ManifestLoader(limits: YAMLLimits(maxFileSize: 100))
        #expect(failures(loader.load(paths: ["/nonexistent/services.d", big])) == [
            "/nonexistent/services.d: no such file or directory",
            "\(big): file is too large (more than 100 bytes)",
        ])
    }

    @Test func anEmptyDirectoryLoadsNothing() throws {
        let directory = try temporaryDirectory([:])
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try ManifestLoader().load(paths: [directory.path]).get() == [])
    }
}

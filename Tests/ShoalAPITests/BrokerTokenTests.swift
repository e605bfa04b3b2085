import Foundation
import ShoalAPI
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite struct BrokerTokenTests {
    /// A fresh state directory that does not exist yet, below a temporary one.
    private func scratchDirectory() throws -> (parent: String, state: String) {
        var template = Array((NSTemporaryDirectory() + "/shoal-token-XXXXXX").utf8CString)
        let parent = try #require(mkdtemp(&template).map { String(cString: $0) })
        return (parent, parent + "/state/shoal")
    }

    private func mode(of path: String) -> mode_t {
        var info = stat()
        #expect(stat(path, &info) == 0)
        return info.st_mode & 0o777
    }

    @Test func createsTheTokenOwnerOnlyThenReusesIt() throws {
        let (parent, state) = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }

        let token = try BrokerToken.loadOrCreate(stateDirectory: state)
        #expect(token.count == 64)
        #expect(token.allSatisfy { $0.isHexDigit })
        #expect(mode(of: state + "/token") == 0o600)
        #expect(mode(of: state) == 0o700)
        #expect(try String(contentsOfFile: state + "/token", encoding: .utf8) == token + "\n")

        #expect(try BrokerToken.loadOrCreate(stateDirectory: state) == token)
        #expect(try BrokerToken.read(stateDirectory: state) == token)
    }

    @Test func refusesATokenOthersCanRead() throws {
        let (parent, state) = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        _ = try BrokerToken.loadOrCreate(stateDirectory: state)
        #expect(chmod(state + "/token", 0o640) == 0)

        let error = try #require(throws: BrokerTokenError.self) { try BrokerToken.read(stateDirectory: state) }
        #expect(error.description.contains("chmod 600"))
        #expect(throws: BrokerTokenError.self) { try BrokerToken.loadOrCreate(stateDirectory: state) }
    }

    @Test func saysWhereItLookedWhenThereIsNoToken() throws {
        let (parent, state) = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }

        let error = try #require(throws: BrokerTokenError.self) { try BrokerToken.read(stateDirectory: state) }
        #expect(error.description.contains(state + "/token"))
        #expect(error.description.contains("shoal broker"))
    }

    @Test func matchesOnlyTheSameToken() {
        let expected = "0123456789abcdef0123456789abcdef"
        #expect(BrokerToken.matches(expected, expected))
        #expect(BrokerToken.matches(expected[...], expected))
        #expect(!BrokerToken.matches("0123456789abcdef0123456789abcdeF", expected))
        #expect(!BrokerToken.matches("x123456789abcdef0123456789abcdef", expected))
        #expect(!BrokerToken.matches("0123456789abcdef", expected))
        #expect(!BrokerToken.matches(expected + "0", expected))
        #expect(!BrokerToken.matches("", expected))
        #expect(!BrokerToken.matches("", ""))
    }

    @Test func anExplicitDirectoryOrAddressWins() {
        #expect(StateDirectory.resolve("/srv/shoal") == "/srv/shoal")
        #expect(BrokerAddress.resolve("http://broker:7070") == "http://broker:7070")
    }
}

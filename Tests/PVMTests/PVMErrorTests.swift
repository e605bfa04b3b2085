import PVM
import Testing

struct PVMErrorTests {
    @Test(arguments: [
        (PVMError.Code.noHost, "PvmNoHost", Int32(-6), "No such host"),
        (.noFile, "PvmNoFile", -7, "No such file"),
        (.badParam, "PvmBadParam", -2, "Bad parameter"),
        (.systemError, "PvmSysErr", -14, "Can't contact local daemon"),
        (.duplicateHost, "PvmDupHost", -28, "Duplicate host"),
        (.ipLoopback, "PvmIPLoopback", -36, "Master host's IP is loopback"),
        (.timedOut, "EngineTimedOut", 1001, "Timed out"),
        (.stillAttached, "DaemonStillAttached", 1006, "This process is still enrolled with that pvmd"),
    ])
    func codesHaveStableValuesNamesAndTexts(code: PVMError.Code, name: String, value: Int32, text: String) {
        #expect(code.rawValue == value)
        #expect(code.name == name)
        #expect(code.text == text)
        #expect(PVMError.Code(rawValue: value) == code)
    }

    @Test func unknownCodesStillHaveAName() {
        let code = PVMError.Code(rawValue: -99)
        #expect(code.name == "PvmError-99")
        #expect(code.text == "Unknown PVM error -99")
    }

    @Test func descriptionNamesTheOperationCodeAndDetail() {
        let error = PVMError(.noHost, operation: "pvm_spawn(/usr/bin/x on c2)", detail: "after 2 tries")
        #expect(error.description == "pvm_spawn(/usr/bin/x on c2): PvmNoHost (-6): No such host — after 2 tries")
        #expect(error.name == "PvmNoHost")
        #expect(PVMError(.noFile, operation: "op").description == "op: PvmNoFile (-7): No such file")
    }

    @Test func idsPrintLikePVM() {
        #expect(PVMTaskID(rawValue: 0x40001).description == "t40001")
        #expect(PVMHostID(rawValue: 0x80000).description == "t80000")
    }
}

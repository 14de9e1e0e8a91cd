// The router install on the gateway: pinned package, pinned dependency closure, air-gapped index.
import * as assert from "assert";
import { sglangRouter } from "../../components/routers/sglang/router";

describe("sglang router install", () => {
    it("0.3.2 installs with the shipped dependency closure as pip constraints", () => {
        const [script] = sglangRouter.install({ type: "sglang", policy: "cache_aware", version: "0.3.2" }).commands;
        assert.match(script, /-c \/opt\/sglang-gateway\/routers\/sglang-router-0\.3\.2\/constraints\.txt sglang-router==0\.3\.2/);
        assert.match(script, /^pydantic==2\.14\.4$/m);
    });

    it("a version without a shipped closure installs the pinned package alone", () => {
        const [script] = sglangRouter.install({ type: "sglang", policy: "cache_aware", version: "0.3.1" }).commands;
        assert.doesNotMatch(script, /constraints/);
        assert.match(script, /sglang-router==0\.3\.1/);
    });

    it("a plain-HTTP index on another host is trusted by name (pip refuses it otherwise)", () => {
        const [script] = sglangRouter.install({ type: "sglang", policy: "cache_aware", version: "0.3.2", indexUrl: "http://10.213.0.1:8764/simple" }).commands;
        assert.match(script, /--index-url http:\/\/10\.213\.0\.1:8764\/simple --trusted-host 10\.213\.0\.1 /);
        assert.doesNotMatch(sglangRouter.install({ type: "sglang", policy: "cache_aware", version: "0.3.2", indexUrl: "https://pypi.example/simple" }).commands[0], /trusted-host/);
    });
});

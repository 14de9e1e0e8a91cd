// SSH key pairs for tests. ssh2 1.17's generateKeyPairSync("ed25519") writes an OpenSSH private key that its
// own parseKey rejects ("Malformed OpenSSH private key") about once in 270 keys (11 of 3,000 measured): a
// test that made one such key failed every connection it tried. So each key is parsed before it is used.
import { utils } from "ssh2";

/** A key pair whose private key ssh2 can read: `generate` (default ed25519) again, bounded, until it can. */
export function sshKeyPair(generate: () => { private: string; public: string } = () => utils.generateKeyPairSync("ed25519")): {
    private: string;
    public: string;
} {
    for (let attempt = 0; attempt < 20; attempt++) {
        const pair = generate();
        if (!(utils.parseKey(pair.private) instanceof Error)) {
            return pair;
        }
    }
    throw new Error("ssh2 generated no readable key in 20 attempts");
}

// The EC2 key pair's public key. ImportKeyPair takes RSA (2048 bits and up) and ED25519 keys only;
// anything else fails at deploy time with InvalidKey.Format, so it is refused with the config.

/** Why EC2 would refuse this private key's public half; undefined when it would take it. */
export function keyPairProblem(privateKey: string): string | undefined {
    const { utils } = require("ssh2") as typeof import("ssh2");
    const parsed = utils.parseKey(privateKey);
    if (parsed instanceof Error) {
        return `not a usable SSH private key (${parsed.message}); expected an ED25519 or RSA (2048 bits or more) key in OpenSSH or PEM form`;
    }
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (key.type === "ssh-ed25519") {
        return undefined;
    }
    if (key.type === "ssh-rsa") {
        const crypto = require("crypto") as typeof import("crypto");
        const bits = crypto.createPublicKey(key.getPublicPEM()).asymmetricKeyDetails?.modulusLength ?? 0;
        return bits >= 2048 ? undefined : `an RSA key of ${bits} bits; EC2 key pairs need RSA of 2048 bits or more, or ED25519`;
    }
    return `a key of type ${key.type}; EC2 key pairs take ED25519 or RSA (2048 bits or more) only`;
}

/** The OpenSSH public key of a private key, for the EC2 key pair. */
export function publicKeyOf(privateKey: string): string {
    const problem = keyPairProblem(privateKey);
    if (problem) {
        throw new Error(`aws backend: privateKey: ${problem}`);
    }
    const { utils } = require("ssh2") as typeof import("ssh2");
    const parsed = utils.parseKey(privateKey);
    const key = Array.isArray(parsed) ? parsed[0] : (parsed as Exclude<typeof parsed, Error>);
    return `${key.type} ${key.getPublicSSH().toString("base64")} sglang-gateway`;
}

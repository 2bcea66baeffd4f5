/**
 * lib/egress/policy.ts: the three tiers (never, private, the rest) under each mode, domain rules,
 * address forms (IPv4-mapped IPv6, IPv6 ranges) and the validation the API and templates run. Pure
 * functions: no traffic is sent anywhere.
 */
import assert from "node:assert/strict";
import { DomainError } from "../kit/errors.js";
import {
  ALLOW_ALL,
  addressAllowed,
  checkEgressPolicy,
  DENY_ALL,
  domainMatches,
  type EgressPolicy,
  EgressRanges,
  nameAllowed,
  samePolicy,
} from "./policy.js";

const allowlist = (domains: string[], cidrs: string[] = []): EgressPolicy => ({ mode: "allowlist", domains, cidrs });
const allowAll = (cidrs: string[]): EgressPolicy => ({ mode: "allow_all", domains: [], cidrs });

/** The host's own address and an operator's range, as egressRangesFor would add them. */
const ranges = new EgressRanges(["198.51.100.10/32", "203.0.113.0/24"]);

const invalid = (match: RegExp) => (e: unknown) => {
  assert.ok(e instanceof DomainError, String(e));
  assert.equal(e.kind, "invalid-argument");
  assert.match(e.message, match);
  return true;
};

describe("egress policy: address tiers", () => {
  it("never opens loopback, link-local (the metadata address), multicast, reserved, the host's and the operator's ranges", () => {
    const everything = allowAll(["0.0.0.0/0", "::/0"]);
    for (const ip of [
      "127.0.0.1",
      "127.8.9.10",
      "0.0.0.0",
      "169.254.169.254",
      "169.254.0.1",
      "224.0.0.251",
      "239.255.255.250",
      "240.0.0.1",
      "255.255.255.255",
      "198.51.100.10", // the host
      "203.0.113.77", // the operator's range
      "::1",
      "::",
      "fe80::1",
      "ff02::fb",
    ]) {
      assert.equal(addressAllowed(everything, ranges, ip), false, `allow_all with 0.0.0.0/0 and ::/0 opened ${ip}`);
      assert.equal(addressAllowed(allowlist(["x.test"], [`${ip}`]), ranges, ip, true), false, `allowlist opened ${ip}`);
    }
    // Next to the host's own address and outside the operator's range, the same policy opens.
    assert.equal(addressAllowed(everything, ranges, "198.51.100.11"), true);
    assert.equal(addressAllowed(everything, ranges, "203.0.114.1"), true);
  });

  it("keeps private ranges closed unless the policy names them, even for an allowed name", () => {
    for (const ip of ["10.1.2.3", "172.16.0.9", "172.31.255.254", "192.168.1.1", "100.64.0.1", "fd12:3456::1"]) {
      assert.equal(addressAllowed(ALLOW_ALL, ranges, ip), false, `allow_all opened ${ip}`);
      assert.equal(addressAllowed(allowlist(["intranet.test"]), ranges, ip, true), false, `a name opened ${ip}`);
    }
    const tenOpen = allowAll(["10.0.0.0/8"]);
    assert.equal(addressAllowed(tenOpen, ranges, "10.1.2.3"), true);
    assert.equal(addressAllowed(tenOpen, ranges, "192.168.1.1"), false);
    assert.equal(addressAllowed(allowlist([], ["192.168.7.0/24"]), ranges, "192.168.7.20"), true);
    assert.equal(addressAllowed(allowlist([], ["192.168.7.0/24"]), ranges, "192.168.8.20"), false);
    // 172.32/16 is just past 172.16.0.0/12: public.
    assert.equal(addressAllowed(ALLOW_ALL, ranges, "172.32.0.1"), true);
  });

  it("allow_all opens public addresses, v4 and v6", () => {
    for (const ip of ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "2001:db8::5"])
      assert.equal(addressAllowed(ALLOW_ALL, ranges, ip), true, ip);
    assert.equal(nameAllowed(ALLOW_ALL, "anything.example"), true);
  });

  it("deny_all opens nothing, not even the CIDRs or names it carries", () => {
    const denyListing: EgressPolicy = { mode: "deny_all", domains: ["example.com"], cidrs: ["93.184.216.0/24"] };
    for (const p of [DENY_ALL, denyListing]) {
      assert.equal(addressAllowed(p, ranges, "93.184.216.34"), false);
      assert.equal(addressAllowed(p, ranges, "93.184.216.34", true), false);
      assert.equal(nameAllowed(p, "example.com"), false);
    }
  });

  it("allowlist opens listed CIDRs, and other public addresses only when reached by an allowed name", () => {
    const p = allowlist(["registry.npmjs.org"], ["93.184.216.0/24"]);
    assert.equal(addressAllowed(p, ranges, "93.184.216.34"), true);
    assert.equal(addressAllowed(p, ranges, "104.16.1.1"), false);
    assert.equal(addressAllowed(p, ranges, "104.16.1.1", true), true);
    assert.equal(nameAllowed(p, "registry.npmjs.org"), true);
    assert.equal(nameAllowed(p, "REGISTRY.npmjs.org."), true);
    assert.equal(nameAllowed(p, "evil.npmjs.org"), false);
    assert.equal(nameAllowed(p, "registry.npmjs.org.evil.test"), false);
  });

  it("judges an IPv4-mapped IPv6 address as the IPv4 address it carries", () => {
    assert.equal(addressAllowed(ALLOW_ALL, ranges, "::ffff:127.0.0.1"), false);
    assert.equal(addressAllowed(ALLOW_ALL, ranges, "::FFFF:169.254.169.254"), false);
    assert.equal(addressAllowed(ALLOW_ALL, ranges, "::ffff:10.0.0.1"), false);
    assert.equal(addressAllowed(ALLOW_ALL, ranges, "::ffff:198.51.100.10"), false);
    assert.equal(addressAllowed(ALLOW_ALL, ranges, "::ffff:93.184.216.34"), true);
    assert.equal(addressAllowed(allowlist([], ["93.184.216.0/24"]), ranges, "::ffff:93.184.216.34"), true);
    assert.equal(addressAllowed(allowlist([], ["10.0.0.0/8"]), ranges, "::ffff:10.0.0.1"), true);
  });

  it("never opens the cloud host agents: Azure's WireServer and AWS's IPv6 metadata address, even when the policy names them", () => {
    for (const ip of ["168.63.129.16", "fd00:ec2::254"]) {
      assert.equal(addressAllowed(allowAll(["0.0.0.0/0", "::/0", "fc00::/7"]), ranges, ip), false, ip);
      assert.equal(
        addressAllowed(allowlist([], [`${ip}/${ip.includes(":") ? 128 : 32}`]), ranges, ip, true),
        false,
        ip,
      );
    }
    // Their neighbours are ordinary addresses: public, or private and opened by the policy.
    assert.equal(addressAllowed(ALLOW_ALL, ranges, "168.63.129.17"), true);
    assert.equal(addressAllowed(allowAll(["fc00::/7"]), ranges, "fd00:ec2::253"), true);
  });

  it("never opens IPv6 forms that carry an IPv4 address a relay would reach: IPv4-compatible and 6to4", () => {
    const everything = allowAll(["0.0.0.0/0", "::/0"]);
    for (const ip of ["::7f00:1", "::127.0.0.1", "::a9fe:a9fe", "::5db8:d822", "2002:7f00:1::1", "2002:5db8:d822::1"])
      assert.equal(addressAllowed(everything, ranges, ip), false, ip);
  });

  it("judges NAT64 and IPv4-mapped addresses, in hex and mixed forms, as the IPv4 address they carry", () => {
    for (const ip of [
      "64:ff9b::a9fe:a9fe",
      "64:ff9b::169.254.169.254",
      "64:FF9B:0:0:0:0:7f00:1",
      "64:ff9b::a00:1",
      "64:ff9b::c633:640a", // the host, 198.51.100.10
      "::ffff:a9fe:a9fe",
      "::ffff:7f00:1",
      "0:0:0:0:0:ffff:169.254.169.254",
    ])
      assert.equal(addressAllowed(ALLOW_ALL, ranges, ip), false, ip);
    // A public IPv4 address is reached through NAT64 as it is directly, and a private one only when named.
    assert.equal(addressAllowed(ALLOW_ALL, ranges, "64:ff9b::5db8:d822"), true);
    assert.equal(addressAllowed(ALLOW_ALL, ranges, "64:ff9b::93.184.216.34"), true);
    assert.equal(addressAllowed(allowlist([], ["93.184.216.0/24"]), ranges, "64:ff9b::5db8:d822"), true);
    assert.equal(addressAllowed(allowAll(["10.0.0.0/8"]), ranges, "64:ff9b::10.0.0.1"), true);
    assert.equal(addressAllowed(allowAll(["10.0.0.0/8", "64:ff9b::/96"]), ranges, "64:ff9b::169.254.169.254"), false);
  });

  it("lists the NAT64 forms of the IPv4 never and private ranges, for rules that see the IPv6 address itself", () => {
    const never = ranges.neverCidrs();
    for (const c of ["64:ff9b::7f00:0/104", "64:ff9b::a9fe:0/112", "64:ff9b::a83f:8110/128", "64:ff9b::c633:640a/128"])
      assert.ok(never.includes(c), `${c} missing from ${never.join(", ")}`);
    for (const c of ["64:ff9b::a00:0/104", "64:ff9b::c0a8:0/112"])
      assert.ok(ranges.private.cidrs.includes(c), `${c} missing from ${ranges.private.cidrs.join(", ")}`);
  });

  it("matches IPv6 ranges by prefix", () => {
    const p = allowlist([], ["2001:db8::/32"]);
    assert.equal(addressAllowed(p, ranges, "2001:db8:1::5"), true);
    assert.equal(addressAllowed(p, ranges, "2001:0db8:ffff:ffff::1"), true);
    assert.equal(addressAllowed(p, ranges, "2001:db9::1"), false);
    assert.equal(addressAllowed(allowAll(["fd00::/8"]), ranges, "fd12::1"), true);
    assert.equal(addressAllowed(allowAll(["fd00::/8"]), ranges, "fc00::1"), false);
    assert.equal(addressAllowed(ALLOW_ALL, new EgressRanges(["2001:db8:aa::/48"]), "2001:db8:aa::1"), false);
    assert.equal(addressAllowed(ALLOW_ALL, new EgressRanges(["2001:db8:aa::/48"]), "2001:db8:ab::1"), true);
  });

  it("an allowlist answers no for text that is not an address", () => {
    for (const ip of ["", "example.com", "1.2.3", "127.1", "::ffff:1.2.3"])
      assert.equal(addressAllowed(allowlist(["example.com"], ["0.0.0.0/0"]), ranges, ip), false, ip);
  });

  it("lists the never tier with the extra ranges for the repl's record", () => {
    const cidrs = ranges.neverCidrs();
    for (const c of ["127.0.0.0/8", "169.254.0.0/16", "::/96", "fe80::/10", "198.51.100.10/32", "203.0.113.0/24"])
      assert.ok(cidrs.includes(c), `${c} missing from ${cidrs.join(", ")}`);
    assert.ok(!cidrs.includes("10.0.0.0/8"), "private ranges are not in the never tier");
  });
});

describe("egress policy: domain rules", () => {
  it('"*.example.com" matches names below example.com, not example.com nor look-alikes', () => {
    const d = ["*.example.com"];
    assert.equal(domainMatches(d, "a.example.com"), true);
    assert.equal(domainMatches(d, "a.b.example.com"), true);
    assert.equal(domainMatches(d, "A.Example.COM."), true);
    assert.equal(domainMatches(d, "example.com"), false);
    assert.equal(domainMatches(d, "badexample.com"), false);
    assert.equal(domainMatches(d, "a.badexample.com"), false);
    assert.equal(domainMatches(d, "example.com.evil.test"), false);
  });

  it("an exact name matches only itself", () => {
    assert.equal(domainMatches(["example.com"], "example.com"), true);
    assert.equal(domainMatches(["example.com"], "EXAMPLE.com."), true);
    assert.equal(domainMatches(["example.com"], "a.example.com"), false);
    assert.equal(domainMatches(["example.com"], "xexample.com"), false);
    assert.equal(domainMatches([], "example.com"), false);
  });
});

describe("egress policy: samePolicy", () => {
  it("is true for the same mode and lists in any order, false for any difference", () => {
    assert.equal(samePolicy(ALLOW_ALL, { mode: "allow_all", domains: [], cidrs: [] }), true);
    assert.equal(
      samePolicy(allowlist(["a.test", "b.test"], ["10.0.0.0/8"]), allowlist(["b.test", "a.test"], ["10.0.0.0/8"])),
      true,
    );
    assert.equal(samePolicy(ALLOW_ALL, DENY_ALL), false);
    assert.equal(samePolicy(allowlist(["a.test"]), allowlist(["a.test", "b.test"])), false);
    assert.equal(samePolicy(allowlist(["a.test", "b.test"]), allowlist(["a.test", "c.test"])), false);
    assert.equal(samePolicy(allowAll(["10.0.0.0/8"]), ALLOW_ALL), false);
    assert.equal(samePolicy(allowAll(["10.0.0.0/8"]), allowAll(["192.168.0.0/16"])), false);
  });
});

describe("egress policy: checkEgressPolicy", () => {
  it("rejects ranges no policy opens, naming them", () => {
    for (const c of [
      "169.254.0.0/16",
      "169.254.169.254",
      "127.0.0.1",
      "127.0.0.0/8",
      "224.0.0.0/4",
      "127.1.0.0/16",
      "::1",
      "::/96",
      "fe80::/64",
      "168.63.129.16",
      "fd00:ec2::254",
      "2002::/16",
      "2002:a9fe:a9fe::/48",
      "64:ff9b::a9fe:a9fe",
      "64:ff9b::169.254.0.0/112",
      "::ffff:127.0.0.1",
    ])
      assert.throws(() => checkEgressPolicy(allowlist([], [c])), invalid(/is always denied/), c);
  });

  it("accepts a range that only touches never ranges: one is always denied only inside a single never range", () => {
    for (const c of ["0.0.0.0/1", "128.0.0.0/1", "0.0.0.0/0", "::/0", "::/1", "64:ff9b::/96", "fd00:ec2::/32"])
      assert.deepEqual(checkEgressPolicy(allowAll([c])).cidrs, [c], c);
  });

  it("accepts the whole internet and private ranges (the never tier still wins inside them)", () => {
    for (const c of ["0.0.0.0/0", "::/0", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"])
      assert.deepEqual(checkEgressPolicy(allowAll([c])).cidrs, [c]);
  });

  it("rejects malformed CIDRs and domains with the forms to use", () => {
    for (const c of ["10.0.0.0/33", "2001:db8::/129", "10.0.0", "not-an-ip", "1.2.3.4/8/9", "1.2.3.4/", "1.2.3.4/-1"])
      assert.throws(() => checkEgressPolicy(allowAll([c])), invalid(/is not an address range.*203\.0\.113\.0\/24/), c);
    for (const d of [
      "exa mple.com",
      "-bad.com",
      "bad-.com",
      "*.*.example.com",
      "a.*.example.com",
      "*",
      "a..b",
      "x_y.com",
    ])
      assert.throws(() => checkEgressPolicy(allowlist([d])), invalid(/is not a domain name.*registry\.npmjs\.org/), d);
    assert.throws(() => checkEgressPolicy(allowlist([`${"a".repeat(64)}.com`])), invalid(/is not a domain name/));
  });

  it("limits the number of entries", () => {
    const many = Array.from({ length: 257 }, (_, i) => `h${i}.example.com`);
    assert.throws(() => checkEgressPolicy(allowlist(many)), invalid(/at most 256/));
    assert.equal(checkEgressPolicy(allowlist(many.slice(0, 256))).domains.length, 256);
  });

  it("normalises: lower case, no trailing dot, a bare address as a host range, no duplicates", () => {
    const p = checkEgressPolicy({
      mode: "allowlist",
      domains: ["Registry.NPMJS.org.", "registry.npmjs.org", " *.GitHub.com "],
      cidrs: ["203.0.113.9", "203.0.113.9/32", "2001:DB8::/32", "2001:db8::/32"],
    });
    assert.deepEqual(p, {
      mode: "allowlist",
      domains: ["registry.npmjs.org", "*.github.com"],
      cidrs: ["203.0.113.9/32", "2001:db8::/32"],
    });
  });

  it("clears host bits, so nft and NetworkPolicy read the range as written", () => {
    const p = checkEgressPolicy(allowAll(["10.1.2.3/8", "203.0.113.77/25", "2001:db8:1:2::5/32"]));
    assert.deepEqual(p.cidrs, ["10.0.0.0/8", "203.0.113.0/25", "2001:db8::/32"]);
  });
});

describe("egress policy: what is not an address", () => {
  it("never allows text that is not an IP address, in any mode", () => {
    for (const text of ["", "example.com", "127.1", "not-an-ip", "1.2.3"])
      for (const p of [ALLOW_ALL, allowAll(["0.0.0.0/0"]), allowlist(["example.com"])])
        assert.equal(addressAllowed(p, ranges, text, true), false, `${text} under ${p.mode}`);
  });

  it("lists the never tier without duplicates or ranges inside others", () => {
    const r = new EgressRanges(["127.0.0.1/32", "::1/128", "fe80::1/128", "203.0.113.5/32", "203.0.113.5/32"]);
    const listed = r.neverCidrs();
    assert.equal(new Set(listed).size, listed.length);
    for (const gone of ["127.0.0.1/32", "::1/128", "fe80::1/128"]) assert.ok(!listed.includes(gone), gone);
    for (const kept of ["127.0.0.0/8", "::/96", "fe80::/10", "203.0.113.5/32", "169.254.0.0/16"])
      assert.ok(listed.includes(kept), kept);
  });
});

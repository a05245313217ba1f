// Types for the parts of the `fernet` npm package (0.4.0, CommonJS, untyped) that the interop tests use.
declare module 'fernet' {
  namespace fernet {
    class Secret {
      constructor(secret64: string);
    }
    interface TokenOptions {
      secret?: Secret;
      token?: string;
      /** 0 disables the TTL check (it reads the real clock otherwise). */
      ttl?: number;
      /** A date string for Date.parse; defaults to now. */
      time?: string;
    }
    class Token {
      constructor(opts?: TokenOptions);
      /** Encrypts UTF-8 text; returns the base64url token. */
      encode(message?: string): string;
      /** Verifies and decrypts; returns the plaintext decoded as UTF-8. */
      decode(token?: string): string;
    }
  }
  const fernet: {
    Secret: typeof fernet.Secret;
    Token: typeof fernet.Token;
  };
  export = fernet;
}

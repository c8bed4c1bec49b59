/*
 * testkey.h: a fixed RSA-2048 key for the fuzz targets ONLY.
 *
 * It is committed on purpose so that the seed corpora can hold tokens that
 * verify (RS256 PKCS#1 v1.5 signatures are deterministic). It signs nothing
 * outside tests/fuzz and must never be loaded into a real database.
 */
#ifndef CRMD_FUZZ_TESTKEY_H
#define CRMD_FUZZ_TESTKEY_H

/* The key below is data, one PEM line per line. */
// clang-format off

static const char fuzz_test_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCSug5ql7TkgAN/\n"
    "VUDGl6Ht/gIa6ahDNVgguZ1/REUOE+MDDJVREuFGvRu+H53OunKJM+kga5bujtxY\n"
    "+atvvcVyiEF1xs20MGV0c1ZyN0dS3N/FmQNDdSWUtBl/HDUD9sGysZDGNK6ewGse\n"
    "uZhrzbFGv8yloYsVOMJLTXRmYrMVNZucz2bqBPNzhNO9/cCY7b8r7OC8ei8wuqGW\n"
    "E9bxcYMamG1jePEchQ1IahmzEBdjK437+2/izHJCN5PzNwtKquB7ZMcSjrdiHVa7\n"
    "k2sBVe/kAOiRHRQodSWaH3nyU27+UbKJAl5kCZKWLr0VHB7wVyfKWESJcwQM0A++\n"
    "LNKuZ7ApAgMBAAECggEAJEc0gU55P3YXZ0hg97lOJFYFlznmjJeH7q92LZ1npY9t\n"
    "NbfKw3zzjlX7ogqXLiITZ7EaFxYC/4D7IlS4+qvlQehGpyQ8gCznKN/Lo/ne/LH3\n"
    "8hdfIzK31AijtTX4Nb6xLcmRjjBAbKgO1E33TdBR4LhTlTBX/ytFfvDrstT8imWS\n"
    "xJfQR5Qg6O3KBigPA3tyO1gDEUhPDqgk5JnzLxq9GVhAQ3YQTp6XaSb/R3GZmX/R\n"
    "4xIj8O7NNs1HapDXQkeSJB1mZ0ZXghIvjWgeksy8LGSLExZcK5gfTWtl9NDLZUvZ\n"
    "I9oVIFbR2Si6FQhv7pcYgKmPfXr2xsuJgY/qP6Vs8QKBgQDO6zJ7cI8xb0/Af3WK\n"
    "vxV8YrIFKO+jyFS05/Yr7l9vaVw9HSBa0ezioDUDjqQX86vXU6CsGzyriZP0aQ0E\n"
    "qcKEDXnAVMEnskXvNHTFnjT9+ce1NzQa54FIxlY0tdwwJJOc2rEG8T2SbZuXf+98\n"
    "FPpROm7ReETzQs2mHnBQa47UvwKBgQC1h8z/M18ADnchNgf4fx9DoG8k/NUr8AaS\n"
    "TPD+OOG65y6DYTrjsY4mXShgrEaR/05+r15h6AAJ3xXHu9SvTtY3t+0CPnRp07WB\n"
    "slmLHZAOhizzBniQEUyrAX8G7FruXwf7xqjp1M/iVMUlPSsKgseWbH2TDv4Y2aUi\n"
    "Ehh1oRMtFwKBgQC6TtmQfcPgzgnwGJO8TttIuRDzRm2nedyTWvyzh5lUlnhf6pbU\n"
    "T4pMb9XsEwY7LsL+SaU08f1JssGOYvw+w5+KCRwkCew1EvaXMBMoUJAEUl/4EfGP\n"
    "e/1TionaQhk1G+nxZJPa3WIEMz7SRXZbsgPFGajoYLMsmWzTczrLnlznvwKBgCwq\n"
    "ezTIAeAYpOFerPfHrgqdGQ2NuiuzfVXRBH1Fx53aq1VprZNCWsx4s985av4QeL+X\n"
    "2UXG1WORdFIhH/D7JGFwDWkTWu14hdulUeXn7mmqOXtzYpfirZ2ZgpdjoAgI9P9L\n"
    "6ULi9SUi7MhPpo4rHXY6tR63chkHswakEnFkHC9HAoGACgPxospvxOVPemeuXvVt\n"
    "BiC2GsEuAtbs83CfkcckdStB4SE4dPvmxpbh/BD7Bx1W3dhZwM3xaN1SVwxITfby\n"
    "DpBgQotWihGNZdXnxrsyFpt5ks3fHb5xHoZSUacls5YBpmrKeNNYXuK3JgTi6Lhf\n"
    "W+9WSrtbxrTsndg0sIFnNE8=\n"
    "-----END PRIVATE KEY-----\n"
    ;

// clang-format on
#endif

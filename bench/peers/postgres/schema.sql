-- The relational answer to "sell activation codes of a gift card to concurrent buyers",
-- as a typical ORM shop lays it out: surrogate keys, foreign keys, a row version for
-- optimistic locking, created/updated timestamps, a ledger of wallet top-ups and an
-- idempotency key on purchases. giftcard-pg-bench --reset runs this file (it is compiled
-- into the binary); by hand: psql "host=127.0.0.1 port=54329 user=postgres dbname=giftcard" -f schema.sql
DROP TABLE IF EXISTS purchases, wallet_credits, wallets, activation_codes, gift_cards CASCADE;

CREATE TABLE gift_cards (
  id          bigserial   PRIMARY KEY,
  name        text        NOT NULL,
  price       bigint      NOT NULL CHECK (price > 0),      -- in cents
  currency    char(3)     NOT NULL DEFAULT 'EUR',
  active      boolean     NOT NULL DEFAULT true,
  version     integer     NOT NULL DEFAULT 0,              -- row version
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE activation_codes (
  id          bigserial   PRIMARY KEY,
  card_id     bigint      NOT NULL REFERENCES gift_cards (id),
  code        text        NOT NULL UNIQUE,
  used        boolean     NOT NULL DEFAULT false,
  used_at     timestamptz,
  expires_at  timestamptz NOT NULL,
  version     integer     NOT NULL DEFAULT 0,              -- row version
  created_at  timestamptz NOT NULL DEFAULT now()
);
-- "The first free code of a card" must not walk the codes already sold: a partial index
-- holding only the free codes, in id order.
CREATE INDEX activation_codes_free ON activation_codes (card_id, id) WHERE NOT used;

CREATE TABLE wallets (
  user_id     bigint      PRIMARY KEY,
  balance     bigint      NOT NULL CHECK (balance >= 0),   -- in cents
  version     integer     NOT NULL DEFAULT 0,              -- row version
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Top-ups: what was put into each wallet (the checks compare it with what was spent).
CREATE TABLE wallet_credits (
  id          bigserial   PRIMARY KEY,
  user_id     bigint      NOT NULL REFERENCES wallets (user_id),
  amount      bigint      NOT NULL CHECK (amount > 0),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wallet_credits_user ON wallet_credits (user_id);

CREATE TABLE purchases (
  id              bigserial   PRIMARY KEY,
  user_id         bigint      NOT NULL REFERENCES wallets (user_id),
  card_id         bigint      NOT NULL REFERENCES gift_cards (id),
  code_id         bigint      NOT NULL UNIQUE REFERENCES activation_codes (id),  -- a code is sold once
  price           bigint      NOT NULL CHECK (price > 0),
  idempotency_key text        NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, idempotency_key)
);
CREATE INDEX purchases_card ON purchases (card_id);

import { describe, expect, it } from "vitest";
import { ApiError } from "./client";
import { fieldErrorsFrom, isExplainedByFields } from "./fieldErrors";

const invalid = (details: ApiError["details"], message = "the request body is not valid") =>
  new ApiError({ status: 422, code: "invalid_input", message, details, requestId: "r1" });

describe("fieldErrorsFrom", () => {
  it("maps schema issues by their most specific known location", () => {
    const error = invalid({
      fields: [
        { loc: ["body", "email"], message: "field required" },
        { loc: ["unknown"], message: "ignored" },
      ],
    });
    expect(fieldErrorsFrom(error, ["email", "password"])).toEqual({ email: "Field required" });
  });

  it("uses the error message for details.field, with aliases", () => {
    const error = invalid({ field: "password" }, "this password is too common; choose another");
    expect(fieldErrorsFrom(error, ["new_password"], { password: "new_password" })).toEqual({
      new_password: "This password is too common; choose another",
    });
  });

  it("returns nothing for unknown fields and non-api errors", () => {
    expect(fieldErrorsFrom(invalid({ field: "limit" }), ["email"])).toEqual({});
    expect(fieldErrorsFrom(new Error("boom"), ["email"])).toEqual({});
  });
});

describe("isExplainedByFields", () => {
  it("is true for client errors tied to a shown field, false for the rest", () => {
    const conflict = new ApiError({ status: 409, code: "conflict", message: "x", details: { field: "email" } });
    expect(isExplainedByFields(conflict, { email: "X" })).toBe(true);
    expect(isExplainedByFields(conflict, {})).toBe(false);
    const server = new ApiError({ status: 500, code: "internal", message: "x" });
    expect(isExplainedByFields(server, { email: "X" })).toBe(false);
  });
});

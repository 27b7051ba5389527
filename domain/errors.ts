/** Why a decider refused a command; the api maps each code to one HTTP status. */
export type DomainErrorCode = "not_found" | "conflict" | "unprocessable";

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "DomainError";
  }
}

"""The scoring API: FastAPI over the batch champions (``create_app``); ``python -m customer_intel.serving`` serves it.

Every scoring endpoint takes a customer by id (the latest published day's features) or with its raw
transactions (features built now as of ``as_of``), scores it with the family's registered champion
through the batch's own ``daily_scores``, audits the call, and answers with the family's columns as
``scored_customers`` names them. Auth, rate limits and the audit log are described in
``security.py`` and ``audit.py``; the live at-risk feed in ``live.py``.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at run time, and the
dependencies named in them are local to ``create_app``.
"""


import contextlib
import gc
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBasicCredentials

from customer_intel.serving.audit import AuditLog
from customer_intel.serving.champions import ServingModels, load_serving_models
from customer_intel.serving.config import ServingSettings
from customer_intel.serving.live import FeedBusy, LiveFeed
from customer_intel.serving.pages import render_at_risk
from customer_intel.serving.predict import (
    Features,
    ScoringError,
    build_features,
    churn_detail,
    family_scores,
    model_ref,
    neighbours,
    profiles_frame,
    request_features,
    row_dict,
    transactions_frame,
    uplift_detail,
)
from customer_intel.serving.schemas import (
    ChurnPrediction,
    CustomerRequest,
    EventsRequest,
    Prediction,
    SimilarCustomers,
    SimilarRequest,
    UpliftPrediction,
)
from customer_intel.serving.security import ADMIN_RATE_LIMIT, Gate, RateLimiter, authenticate, basic

log = logging.getLogger(__name__)
DEFAULT_THRESHOLD = 0.5  # the at-risk feed's threshold when no churn champion is loaded (the scorer's own otherwise)


def inputs_sha256(body) -> str:
    """sha256 of the request body as canonical JSON (sorted keys): the audit log's fingerprint of what was asked."""
    return hashlib.sha256(json.dumps(jsonable_encoder(body), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def field_path(loc) -> str:
    """``("body", "transactions", 3, "ts")`` -> ``transactions[3].ts``."""
    out = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path") else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def settle_heap() -> None:
    """Collect, then freeze what is left (the models, the published day, the imported libraries) out of the collector's reach.

    Measured by ``bench/serving.py``: with ~590,000 tracked objects loaded, a full (generation 2) collection held the GIL for
    about 300 ms once every 15-60 s of serving at 100 requests/s, and every request queued behind it (p99 270-280 ms against
    20 ms without one). Frozen objects are never scanned, so a full collection only walks what requests allocated."""
    gc.collect()
    gc.freeze()


class Service:
    """The app's state: the loaded models (swapped whole by a reload), the audit log, the live feed and the limiters."""

    def __init__(self, settings: ServingSettings, loader: Callable[[], ServingModels]):
        self.settings = settings
        self.loader = loader
        self.models: ServingModels | None = None
        self.audit: AuditLog | None = None
        self.feed: LiveFeed | None = None
        self.started = time.monotonic()
        self.predictions = RateLimiter(settings.rate_limit, "predictions")
        self.events = RateLimiter(settings.events_rate_limit, "events")
        self.admin = RateLimiter(ADMIN_RATE_LIMIT, "reloads and feed resets")
        self._reload_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.models = self.loader()
        settle_heap()
        store = None
        if self.settings.audit_location is not None:
            from customer_intel.resources.warehouse import Warehouse

            store = Warehouse(root=self.settings.audit_location).store()
        self.audit = AuditLog(self.settings.audit_dir, store, prefix="", batch_lines=self.settings.audit_batch_lines,
                              interval_seconds=self.settings.audit_interval_seconds).start()
        self.feed = LiveFeed(self.score_churn_frame, self.threshold(), max_rows=self.settings.feed_rows)

    def stop(self) -> None:
        if self.audit is not None:
            self.audit.close()  # the lines not yet shipped go now: nothing recorded is left behind on a clean stop

    def threshold(self) -> float:
        champion = self.models.champions.get("churn") if self.models else None
        return float(getattr(champion.scorer, "threshold", DEFAULT_THRESHOLD)) if champion else DEFAULT_THRESHOLD

    def reload(self) -> ServingModels:
        if not self._reload_lock.acquire(blocking=False):
            raise HTTPException(409, "a reload is already running")
        try:
            self.models = self.loader()  # built whole, then swapped: a request in flight keeps the models it started with
            self.feed.threshold = self.threshold()
            gc.unfreeze()  # the old models may now be collected: one full collection (~0.3 s) on each reload, which is limited
            settle_heap()
            return self.models
        finally:
            self._reload_lock.release()

    # -- scoring -----------------------------------------------------------------------------------
    def score_churn_frame(self, transactions: pd.DataFrame, customers: pd.DataFrame | None, as_of) -> pd.DataFrame:
        """The live feed's scorer: churn for every customer of ``transactions`` as of ``as_of``, as /predict_churn scores one."""
        models = self.models
        frame = build_features(models, transactions, customers, as_of)
        day = pd.Timestamp(as_of)
        return family_scores(models, "churn", Features(frame, str(day.date()), "request", transactions))

    def audited(self, endpoint: str, caller: str, body, response: Response, answer: Callable[[ServingModels, str], dict]) -> dict:
        """Run ``answer(models, request_id)``, audit it (success or refusal), and return it; a ScoringError becomes its status."""
        request_id = uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        started = time.perf_counter()
        models = self.models
        entry = {"request_id": request_id, "time": datetime.now(UTC).isoformat(), "caller": caller, "endpoint": endpoint,
                 "inputs_sha256": inputs_sha256(body)}
        try:
            result = answer(models, request_id)
        except ScoringError as exc:
            self._record(entry, started, status=exc.status, outputs={"detail": str(exc)}, versions={})
            raise HTTPException(exc.status, str(exc), headers={"X-Request-ID": request_id}) from None
        except HTTPException as exc:
            self._record(entry, started, status=exc.status_code, outputs={"detail": exc.detail}, versions={})
            raise HTTPException(exc.status_code, exc.detail, headers={**(exc.headers or {}), "X-Request-ID": request_id}) from None
        except Exception as exc:
            self._record(entry, started, status=500, outputs={"detail": f"{type(exc).__name__}: {exc}"}, versions={})
            raise
        versions = {result["model"]["family"]: result["model"]["label"]} if isinstance(result.get("model"), dict) else {}
        self._record(entry, started, status=200, outputs=result, versions=versions)
        return result

    def _record(self, entry: dict, started: float, *, status: int, outputs, versions: dict) -> None:
        entry.update(status=status, outputs=outputs, model_versions=versions, latency_ms=round(1000 * (time.perf_counter() - started), 3))
        self.audit.record(entry)

    def predict(self, family: str, endpoint: str, body: CustomerRequest, caller: str, response: Response,
                detail: Callable[[ServingModels, dict], dict] | None = None) -> dict:
        def answer(models: ServingModels, request_id: str) -> dict:
            features = request_features(models, body)
            scores = row_dict(family_scores(models, family, features))
            return {"request_id": request_id, "customer_id": body.customer_id, "as_of": features.as_of, "source": features.source,
                    "model": model_ref(models, family), "scores": scores, **(detail(models, scores) if detail else {})}

        return self.audited(endpoint, caller, body, response, answer)


def create_app(settings: ServingSettings | None = None, loader: Callable[[], ServingModels] | None = None) -> FastAPI:
    """The API over ``settings`` (default: the environment's, checked) and the models ``loader`` gives (default: the registry's
    champions and the warehouse's latest published day)."""
    settings = settings or ServingSettings.from_env()
    service = Service(settings, loader or load_serving_models)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="customer_intel scoring API", version="1", lifespan=lifespan,
                  description="The batch champions (CLTV, churn, uplift, segmentation, embeddings), one customer at a time.")
    app.state.service = service
    app.add_middleware(Gate, settings=settings)  # 413 and 401 before any body is parsed; /health alone is open

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": field_path(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    def caller(request: Request, credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)]) -> str:
        return authenticate(settings, credentials, request)

    def predicting(who: Annotated[str, Depends(caller)]) -> str:
        service.predictions.hit(who)
        return who

    def streaming(who: Annotated[str, Depends(caller)]) -> str:
        service.events.hit(who)
        return who

    def administering(who: Annotated[str, Depends(caller)]) -> str:
        service.admin.hit(who)
        return who

    @app.post("/predict_cltv", response_model=Prediction, tags=["scoring"])
    def predict_cltv(body: CustomerRequest, response: Response, who: Annotated[str, Depends(predicting)]) -> dict:
        """Expected purchases and spend over the champion's horizon, P(alive), the CLTV and its interval."""
        return service.predict("cltv", "/predict_cltv", body, who, response)

    @app.post("/predict_churn", response_model=ChurnPrediction, tags=["scoring"])
    def predict_churn(body: CustomerRequest, response: Response, who: Annotated[str, Depends(predicting)]) -> dict:
        """P(no purchase over the horizon), the risk band, the top reasons (SHAP log-odds) and the counterfactual suggestion."""
        return service.predict("churn", "/predict_churn", body, who, response, churn_detail)

    @app.post("/uplift_score", response_model=UpliftPrediction, tags=["scoring"])
    def uplift_score(body: CustomerRequest, response: Response, who: Annotated[str, Depends(predicting)]) -> dict:
        """The uplift of every offer with its quadrant, and the best offer."""
        return service.predict("uplift", "/uplift_score", body, who, response, uplift_detail)

    @app.post("/segment", response_model=Prediction, tags=["scoring"])
    def segment(body: CustomerRequest, response: Response, who: Annotated[str, Depends(predicting)]) -> dict:
        """The customer's segment (id, name), its distance to the segment's centre and whether it is an outlier."""
        return service.predict("segmentation", "/segment", body, who, response)

    @app.post("/similar_customers", response_model=SimilarCustomers, tags=["scoring"])
    def similar_customers(body: SimilarRequest, response: Response, who: Annotated[str, Depends(predicting)]) -> dict:
        """The ``k`` customers of the published day whose embeddings are closest (cosine) to this customer's."""
        def answer(models: ServingModels, request_id: str) -> dict:
            features = request_features(models, body)
            found, search, label = neighbours(models, features, body.customer_id, body.k)
            return {"request_id": request_id, "customer_id": body.customer_id, "as_of": features.as_of, "source": features.source,
                    "model": {**model_ref(models, "embeddings"), **({"label": label} if label else {})},
                    "scores": {"k": body.k}, "neighbours": found, "index": search}

        return service.audited("/similar_customers", who, body, response, answer)

    @app.post("/events", tags=["stream"])
    def events(body: EventsRequest, response: Response, who: Annotated[str, Depends(streaming)]) -> dict:
        """Transaction events (and profiles) from a stream: stored, and the customers they touch rescored for the at-risk feed
        (every known customer when the stream's day advances)."""
        def answer(_models: ServingModels, request_id: str) -> dict:
            profiles = profiles_frame([row.model_dump() for row in body.customers])
            try:  # never queued behind a batch being scored: a stream must not tie up the threads the predictions need
                result = service.feed.ingest(transactions_frame(body.transactions), profiles, body.as_of, rescore=body.rescore, wait=False)
            except FeedBusy as exc:
                raise HTTPException(429, f"{exc}: retry in a second", headers={"Retry-After": "1"}) from None
            except ValueError as exc:
                raise ScoringError(422, str(exc)) from None
            return {"request_id": request_id, **result}

        return service.audited("/events", who, body, response, answer)

    @app.get("/at-risk", tags=["stream"], response_model=None)
    def at_risk(request: Request, who: Annotated[str, Depends(caller)], limit: Annotated[int | None, Query(ge=1, le=5000)] = None,
                format: Annotated[str | None, Query(pattern="^(json|html)$")] = None) -> HTMLResponse | JSONResponse:
        """The live at-risk feed: JSON, or a refreshing HTML page for a browser (``Accept: text/html`` or ``?format=html``)."""
        snapshot = service.feed.snapshot(limit)
        wants_html = format == "html" or (format is None and "text/html" in request.headers.get("accept", ""))
        headers = {"Vary": "Accept", "Cache-Control": "no-store"}  # one URL, two forms, always live
        if wants_html:
            return HTMLResponse(render_at_risk(snapshot, service.settings.page_refresh_seconds), headers=headers)
        return JSONResponse(snapshot, headers=headers)

    @app.delete("/at-risk", tags=["stream"])
    def reset_feed(response: Response, who: Annotated[str, Depends(administering)]) -> dict:
        """Forget the stream: its events, its clock and the feed (a simulator starting a new replay)."""
        def answer(_models: ServingModels, request_id: str) -> dict:
            service.feed.reset()
            return {"request_id": request_id, "reset": True}

        return service.audited("/at-risk (reset)", who, {}, response, answer)

    @app.get("/models", tags=["operations"])
    def models(who: Annotated[str, Depends(caller)]) -> dict:
        """Each family's champion: registered model, version, candidate, trained at, cutoff; and the published day in use."""
        return _models_body(service.models)

    @app.post("/reload", tags=["operations"])
    def reload(response: Response, who: Annotated[str, Depends(administering)]) -> dict:
        """Load every champion (by alias) and the latest published day again, and swap them in whole."""
        def answer(_models: ServingModels, request_id: str) -> dict:
            return {"request_id": request_id, **_models_body(service.reload())}

        return service.audited("/reload", who, {}, response, answer)

    @app.get("/health", tags=["operations"])
    def health() -> dict:
        """Liveness and what is loaded (no credentials needed: it names no customer and no secret)."""
        loaded = service.models
        audit = service.audit.stats() if service.audit else {}
        problems = [*(f"no {f} champion" for f in (loaded.missing if loaded else {})),
                    *([] if loaded and loaded.published else ["no published day"]),
                    *(loaded.stale() if loaded else []),
                    *(["audit shipping failing"] if audit.get("last_error") else [])]
        return {"status": "degraded" if problems else "ok", "problems": problems,
                "champions": {n: c.label for n, c in (loaded.champions.items() if loaded else [])},
                "published_day": loaded.published.date if loaded and loaded.published else None,
                "loaded_at": loaded.loaded_at if loaded else None,
                "audit": {k: audit.get(k) for k in ("recorded", "shipped_lines", "pending_lines")},
                "uptime_seconds": round(time.monotonic() - service.started, 1)}

    return app


def _models_body(models: ServingModels) -> dict:
    return {"loaded_at": models.loaded_at, "load_seconds": models.load_seconds, "registry": models.registry,
            "warehouse": models.warehouse, "published_day": models.published.date if models.published else None,
            "published": models.published_note, "families": models.describe()}

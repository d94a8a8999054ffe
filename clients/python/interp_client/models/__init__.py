"""Contains all the data models used in inputs/outputs"""

from .attribute_job import AttributeJob
from .attribute_job_links import AttributeJobLinks
from .attribute_request import AttributeRequest
from .attribute_request_aggregate import AttributeRequestAggregate
from .attribute_request_baseline_type_0 import AttributeRequestBaselineType0
from .attribute_request_method import AttributeRequestMethod
from .attribute_request_objective import AttributeRequestObjective
from .attribute_request_precision import AttributeRequestPrecision
from .attribute_request_rule import AttributeRequestRule
from .attributed_token import AttributedToken
from .attribution_result import AttributionResult
from .attribution_result_aggregate import AttributionResultAggregate
from .attribution_result_method import AttributionResultMethod
from .attribution_result_objective import AttributionResultObjective
from .chat_message import ChatMessage
from .chat_message_role import ChatMessageRole
from .continuation import Continuation
from .continuation_finish_reason import ContinuationFinishReason
from .continuation_target import ContinuationTarget
from .contrast_pair import ContrastPair
from .decision import Decision
from .diagnose_job import DiagnoseJob
from .diagnose_job_links import DiagnoseJobLinks
from .diagnose_request import DiagnoseRequest
from .diagnose_request_kinds_item import DiagnoseRequestKindsItem
from .diagnosis_report import DiagnosisReport
from .drift import Drift
from .driving_token import DrivingToken
from .edit_evaluation import EditEvaluation
from .edit_hyperparameters import EditHyperparameters
from .edit_job import EditJob
from .edit_job_links import EditJobLinks
from .edit_request import EditRequest
from .edit_request_method import EditRequestMethod
from .edit_result import EditResult
from .edit_result_deltas_item import EditResultDeltasItem
from .edit_result_hyperparameters import EditResultHyperparameters
from .edit_result_method import EditResultMethod
from .edit_result_seconds import EditResultSeconds
from .erase_job import EraseJob
from .erase_job_links import EraseJobLinks
from .erase_request import EraseRequest
from .erase_request_method import EraseRequestMethod
from .erase_request_reading import EraseRequestReading
from .erase_request_statistics_dtype import EraseRequestStatisticsDtype
from .erasure_result import ErasureResult
from .erasure_result_method import ErasureResultMethod
from .erasure_result_reading import ErasureResultReading
from .erasure_result_seconds import ErasureResultSeconds
from .extract_vector_request import ExtractVectorRequest
from .extract_vector_request_method import ExtractVectorRequestMethod
from .extract_vector_request_reading import ExtractVectorRequestReading
from .fact_edit import FactEdit
from .fact_evaluation import FactEvaluation
from .field_error import FieldError
from .fluency import Fluency
from .generate_request import GenerateRequest
from .generate_response import GenerateResponse
from .generate_response_finish_reason import GenerateResponseFinishReason
from .generate_target import GenerateTarget
from .generated_token import GeneratedToken
from .health import Health
from .job_status import JobStatus
from .labelled_text import LabelledText
from .layer_erasure import LayerErasure
from .lens_cell import LensCell
from .lens_layer import LensLayer
from .lens_layer_view import LensLayerView
from .lens_target import LensTarget
from .lens_token import LensToken
from .logit_lens_request import LogitLensRequest
from .logit_lens_response import LogitLensResponse
from .model_info import ModelInfo
from .model_list import ModelList
from .neighborhood_fact import NeighborhoodFact
from .next_token_target import NextTokenTarget
from .prediction import Prediction
from .problem import Problem
from .progress import Progress
from .prompt_check import PromptCheck
from .rate import Rate
from .readiness import Readiness
from .readiness_status import ReadinessStatus
from .readiness_workers import ReadinessWorkers
from .score_job import ScoreJob
from .score_job_links import ScoreJobLinks
from .score_request import ScoreRequest
from .score_result import ScoreResult
from .statistics_info import StatisticsInfo
from .steering_spec import SteeringSpec
from .steering_spec_positions import SteeringSpecPositions
from .subject_mlp_view import SubjectMlpView
from .subject_span import SubjectSpan
from .suggestion import Suggestion
from .suggestion_body import SuggestionBody
from .suggestion_kind import SuggestionKind
from .target_attribution import TargetAttribution
from .text_score_view import TextScoreView
from .token_info import TokenInfo
from .token_score import TokenScore
from .trace_grid_view import TraceGridView
from .trace_grid_view_kind import TraceGridViewKind
from .trace_job import TraceJob
from .trace_job_links import TraceJobLinks
from .trace_request import TraceRequest
from .trace_request_direction import TraceRequestDirection
from .trace_request_kinds_item import TraceRequestKindsItem
from .trace_request_method import TraceRequestMethod
from .trace_result import TraceResult
from .trace_result_direction_type_0 import TraceResultDirectionType0
from .trace_result_method import TraceResultMethod
from .usage import Usage
from .variant_component import VariantComponent
from .variant_deletion import VariantDeletion
from .variant_detail import VariantDetail
from .variant_detail_hyperparameters import VariantDetailHyperparameters
from .variant_detail_provenance import VariantDetailProvenance
from .variant_detail_report_type_0 import VariantDetailReportType0
from .variant_detail_request import VariantDetailRequest
from .variant_info import VariantInfo
from .variant_list import VariantList
from .vector_deletion import VectorDeletion
from .vector_info import VectorInfo
from .vector_info_accuracy import VectorInfoAccuracy
from .vector_info_layer_scores import VectorInfoLayerScores
from .vector_info_norms import VectorInfoNorms
from .vector_job import VectorJob
from .vector_job_links import VectorJobLinks
from .vector_list import VectorList

__all__ = (
    "AttributedToken",
    "AttributeJob",
    "AttributeJobLinks",
    "AttributeRequest",
    "AttributeRequestAggregate",
    "AttributeRequestBaselineType0",
    "AttributeRequestMethod",
    "AttributeRequestObjective",
    "AttributeRequestPrecision",
    "AttributeRequestRule",
    "AttributionResult",
    "AttributionResultAggregate",
    "AttributionResultMethod",
    "AttributionResultObjective",
    "ChatMessage",
    "ChatMessageRole",
    "Continuation",
    "ContinuationFinishReason",
    "ContinuationTarget",
    "ContrastPair",
    "Decision",
    "DiagnoseJob",
    "DiagnoseJobLinks",
    "DiagnoseRequest",
    "DiagnoseRequestKindsItem",
    "DiagnosisReport",
    "Drift",
    "DrivingToken",
    "EditEvaluation",
    "EditHyperparameters",
    "EditJob",
    "EditJobLinks",
    "EditRequest",
    "EditRequestMethod",
    "EditResult",
    "EditResultDeltasItem",
    "EditResultHyperparameters",
    "EditResultMethod",
    "EditResultSeconds",
    "EraseJob",
    "EraseJobLinks",
    "EraseRequest",
    "EraseRequestMethod",
    "EraseRequestReading",
    "EraseRequestStatisticsDtype",
    "ErasureResult",
    "ErasureResultMethod",
    "ErasureResultReading",
    "ErasureResultSeconds",
    "ExtractVectorRequest",
    "ExtractVectorRequestMethod",
    "ExtractVectorRequestReading",
    "FactEdit",
    "FactEvaluation",
    "FieldError",
    "Fluency",
    "GeneratedToken",
    "GenerateRequest",
    "GenerateResponse",
    "GenerateResponseFinishReason",
    "GenerateTarget",
    "Health",
    "JobStatus",
    "LabelledText",
    "LayerErasure",
    "LensCell",
    "LensLayer",
    "LensLayerView",
    "LensTarget",
    "LensToken",
    "LogitLensRequest",
    "LogitLensResponse",
    "ModelInfo",
    "ModelList",
    "NeighborhoodFact",
    "NextTokenTarget",
    "Prediction",
    "Problem",
    "Progress",
    "PromptCheck",
    "Rate",
    "Readiness",
    "ReadinessStatus",
    "ReadinessWorkers",
    "ScoreJob",
    "ScoreJobLinks",
    "ScoreRequest",
    "ScoreResult",
    "StatisticsInfo",
    "SteeringSpec",
    "SteeringSpecPositions",
    "SubjectMlpView",
    "SubjectSpan",
    "Suggestion",
    "SuggestionBody",
    "SuggestionKind",
    "TargetAttribution",
    "TextScoreView",
    "TokenInfo",
    "TokenScore",
    "TraceGridView",
    "TraceGridViewKind",
    "TraceJob",
    "TraceJobLinks",
    "TraceRequest",
    "TraceRequestDirection",
    "TraceRequestKindsItem",
    "TraceRequestMethod",
    "TraceResult",
    "TraceResultDirectionType0",
    "TraceResultMethod",
    "Usage",
    "VariantComponent",
    "VariantDeletion",
    "VariantDetail",
    "VariantDetailHyperparameters",
    "VariantDetailProvenance",
    "VariantDetailReportType0",
    "VariantDetailRequest",
    "VariantInfo",
    "VariantList",
    "VectorDeletion",
    "VectorInfo",
    "VectorInfoAccuracy",
    "VectorInfoLayerScores",
    "VectorInfoNorms",
    "VectorJob",
    "VectorJobLinks",
    "VectorList",
)
